"""Build the hard-sample dataset: corpora → 16 kHz → reconstructions → sharded Parquet + card.

    python -m datasets_scripts.build --config configs/data/tiny.yaml [--output-dir DIR]
        [--num-proc N] [--limit N] [--overwrite] [--push-to-hub REPO]
    accelerate launch --multi_gpu --num_processes N -m datasets_scripts.build --config ...
        # N ranks, one GPU each where there are GPUs, CPU ranks (gloo) where there are none

Steps (configs/data/README.md documents every config key):

1. validate the config, the paradigm names and the corpus paths (nothing is written before);
2. read every source's protocol, assign speaker-disjoint splits (:mod:`datasets_scripts.splits`),
   sort the kept clips by ``utt_id`` and cut them into shards of ``shard_size`` clips;
3. per shard: decode, crop, reconstruct with every applicable paradigm, post-process, encode
   (FLAC / 16-bit WAV) and write ``.work/shard-XXXXX.parquet`` atomically. Finished shards are
   skipped on a rerun with the same config, so a killed build resumes where it stopped;
4. assemble ``data/{split}-XXXXX-of-YYYYY.parquet`` (deduplicated by ``utt_id``), write the
   dataset card ``README.md`` and ``build.log``; optionally upload the folder to the Hub.

A file that cannot be used (missing, empty, undecodable) is skipped, logged with its reason and
counted in the card; it never stops the build.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import io
import json
import logging
import os
import shlex
import shutil
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np

from racl.config import ConfigError, check_keys, fail, read_yaml

from .schema import BONAFIDE, FEATURES, LABEL_NAMES, NO_RECONSTRUCTION, SAMPLING_RATE, SPOOF, ClipRecord
from .splits import SPLITS, Dropped, SplitSpec, assign_splits

LOG = logging.getLogger("racl.build")
WORK_DIR, DATA_DIR, LOG_FILE, FINGERPRINT = ".work", "data", "build.log", "fingerprint.json"
FORMAT_VERSION = 1  # bump when the shard contents change for the same config
AUDIO_FORMATS = {"flac": ("FLAC", "PCM_16"), "wav": ("WAV", "PCM_16")}
ROW_GROUP_SIZE = 100  # datasets' choice for audio: small row groups keep random access cheap
SKIPPED_META = b"racl_skipped"
BARRIER_TIMEOUT_H = 48


# -- config ---------------------------------------------------------------------------------------


@dataclass
class SourceSpec:
    """One corpus to read (``iter_corpus(corpus, root, split, **options)``)."""

    corpus: str
    root: str | None = None
    split: str | None = None
    options: dict = field(default_factory=dict)
    max_clips: int | None = None
    assign_split: str | None = None


@dataclass
class ParadigmSpec:
    """One reconstruction paradigm (``get_reconstructor(name, **options)``) and what it applies to."""

    name: str
    options: dict = field(default_factory=dict)
    apply_to: list[str] = field(default_factory=lambda: ["bonafide"])
    batch_size: int | None = None


@dataclass
class BuildConfig:
    """A parsed, validated build config."""

    sources: list[SourceSpec]
    paradigms: list[ParadigmSpec] = field(default_factory=list)
    splits: SplitSpec = field(default_factory=SplitSpec)
    finalize: bool = False
    before_reconstruction: bool = False
    max_seconds: float | None = None
    seed: int = 0
    shard_size: int = 200
    audio_format: str = "flac"
    max_file_mb: float = 500.0
    name: str = ""
    description: str = ""
    output_dir: str | None = None

    def work_settings(self) -> dict:
        """What the shard contents depend on (the fingerprint); card-only settings are left out."""
        settings = asdict(self)
        for key in ("max_file_mb", "name", "description", "output_dir"):
            settings.pop(key)
        return settings


TOP_KEYS = {"name", "description", "output_dir", "sources", "paradigms", "splits", "postprocess", "max_seconds",
            "seed", "shard_size", "audio_format", "max_file_mb"}
SOURCE_KEYS = {"corpus", "root", "split", "options", "max_clips", "assign_split"}
PARADIGM_KEYS = {"name", "options", "apply_to", "batch_size"}
SPLIT_KEYS = {"by", "validation", "test", "seed", "test_only_attacks", "test_only_paradigms", "source_split_map"}
POSTPROCESS_KEYS = {"finalize", "before_reconstruction"}


def _typed(where: str, key: str, value, kind: str, none: bool = False):
    """``value`` if it has ``kind`` (int, pos_int, number, bool, str, dict, str_list), else a ConfigError."""
    if value is None and none:
        return None
    checks = {
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "pos_int": lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0,
        "bool": lambda v: isinstance(v, bool),
        "str": lambda v: isinstance(v, str) and v != "",
        "dict": lambda v: isinstance(v, dict),
        "str_list": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    }
    names = {"pos_int": "a positive integer", "number": "a positive number", "str_list": "a list of strings",
             "dict": "a mapping", "str": "a non-empty string", "int": "an integer", "bool": "true or false"}
    if not checks[kind](value):
        fail(where, key, f"expected {names[kind]}{' or null' if none else ''}, got {value!r}")
    return value


def _choice(where: str, key: str, value, choices: Iterable[str], none: bool = False):
    if value is None and none:
        return None
    if value not in choices:
        fail(where, key, f"expected one of {', '.join(choices)}, got {value!r}")
    return value


def _parse_source(where: str, i: int, raw) -> SourceSpec:
    from .corpora import CORPORA

    key = f"sources[{i}]"
    check_keys(where, key, raw, SOURCE_KEYS)
    if "corpus" not in raw:
        fail(where, f"{key}.corpus", "missing (every source names its corpus reader)")
    return SourceSpec(
        corpus=_choice(where, f"{key}.corpus", raw["corpus"], sorted(CORPORA)),
        root=_typed(where, f"{key}.root", raw.get("root"), "str", none=True),
        split=_typed(where, f"{key}.split", raw.get("split"), "str", none=True),
        options=_typed(where, f"{key}.options", raw.get("options") or {}, "dict"),
        max_clips=_typed(where, f"{key}.max_clips", raw.get("max_clips"), "pos_int", none=True),
        assign_split=_choice(where, f"{key}.assign_split", raw.get("assign_split"), SPLITS, none=True),
    )


def _parse_paradigm(where: str, i: int, raw) -> ParadigmSpec:
    from .paradigms import PARADIGMS

    key = f"paradigms[{i}]"
    if isinstance(raw, str):
        raw = {"name": raw}
    check_keys(where, key, raw, PARADIGM_KEYS)
    name = raw.get("name")
    if name not in PARADIGMS:
        fail(where, f"{key}.name", f"unknown reconstruction paradigm {name!r} (known: {', '.join(PARADIGMS)})")
    apply_to = _typed(where, f"{key}.apply_to", raw.get("apply_to", ["bonafide"]), "str_list")
    for label in apply_to:
        _choice(where, f"{key}.apply_to", label, LABEL_NAMES)
    return ParadigmSpec(
        name=name,
        options=_typed(where, f"{key}.options", raw.get("options") or {}, "dict"),
        apply_to=list(dict.fromkeys(apply_to)),
        batch_size=_typed(where, f"{key}.batch_size", raw.get("batch_size"), "pos_int", none=True),
    )


def _parse_fraction_or_list(where: str, key: str, value):
    if isinstance(value, list):
        return _typed(where, key, value, "str_list")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1:
        return float(value)
    fail(where, key, f"expected a fraction of the speakers in [0, 1) or a list of speakers, got {value!r}")


def _parse_splits(where: str, raw, seed: int, paradigm_names: list[str]) -> SplitSpec:
    check_keys(where, "splits", raw, SPLIT_KEYS)
    spec = SplitSpec(seed=seed)
    spec.by = _choice(where, "splits.by", raw.get("by", "speaker"), ["speaker"])
    spec.validation = _parse_fraction_or_list(where, "splits.validation", raw.get("validation", spec.validation))
    spec.test = _parse_fraction_or_list(where, "splits.test", raw.get("test", spec.test))
    fractions = [v for v in (spec.validation, spec.test) if isinstance(v, float)]
    if sum(fractions) >= 1:
        fail(where, "splits", f"validation + test fractions must leave speakers for train, got {sum(fractions)}")
    spec.seed = _typed(where, "splits.seed", raw.get("seed", seed), "int")
    spec.test_only_attacks = _typed(where, "splits.test_only_attacks", raw.get("test_only_attacks") or [], "str_list")
    spec.test_only_paradigms = _typed(where, "splits.test_only_paradigms", raw.get("test_only_paradigms") or [], "str_list")
    for name in spec.test_only_paradigms:
        if name not in paradigm_names:
            fail(where, "splits.test_only_paradigms", f"{name!r} is not one of this config's paradigms {paradigm_names}")
    mapping = _typed(where, "splits.source_split_map", raw.get("source_split_map") or {}, "dict")
    for own, ours in mapping.items():
        _choice(where, f"splits.source_split_map.{own}", ours, SPLITS)
    spec.source_split_map = {str(k): v for k, v in mapping.items()}
    return spec


def parse_config(raw, where: str = "config") -> BuildConfig:
    """Validate a loaded YAML mapping; every problem is a :class:`ConfigError` naming its key."""
    check_keys(where, "", raw, TOP_KEYS)
    sources = raw.get("sources")
    if not isinstance(sources, list) or not sources:
        fail(where, "sources", f"expected a non-empty list of sources, got {sources!r}")
    paradigms_raw = raw.get("paradigms") or []
    if not isinstance(paradigms_raw, list):
        fail(where, "paradigms", f"expected a list, got {paradigms_raw!r}")
    paradigms = [_parse_paradigm(where, i, p) for i, p in enumerate(paradigms_raw)]
    names = [p.name for p in paradigms]
    if len(set(names)) != len(names):
        fail(where, "paradigms", f"each paradigm may appear once (its name is the utt_id suffix), got {names}")
    seed = _typed(where, "seed", raw.get("seed", 0), "int")
    postprocess = check_keys(where, "postprocess", raw.get("postprocess") or {}, POSTPROCESS_KEYS)
    finalize = _typed(where, "postprocess.finalize", postprocess.get("finalize", False), "bool")
    before = _typed(where, "postprocess.before_reconstruction", postprocess.get("before_reconstruction", False), "bool")
    if before and not finalize:
        fail(where, "postprocess.before_reconstruction", "needs `finalize: true` (it moves part of that processing)")
    return BuildConfig(
        sources=[_parse_source(where, i, s) for i, s in enumerate(sources)],
        paradigms=paradigms,
        splits=_parse_splits(where, raw.get("splits") or {}, seed, names),
        finalize=finalize,
        before_reconstruction=before,
        max_seconds=_typed(where, "max_seconds", raw.get("max_seconds"), "number", none=True),
        seed=seed,
        shard_size=_typed(where, "shard_size", raw.get("shard_size", 200), "pos_int"),
        audio_format=_choice(where, "audio_format", raw.get("audio_format", "flac"), AUDIO_FORMATS),
        max_file_mb=_typed(where, "max_file_mb", raw.get("max_file_mb", 500.0), "number"),
        name=_typed(where, "name", raw.get("name", ""), "str") if raw.get("name") else "",
        description=str(raw.get("description") or ""),
        output_dir=_typed(where, "output_dir", raw.get("output_dir"), "str", none=True),
    )


def read_config(path: str | os.PathLike) -> tuple[dict, str]:
    """A build config's YAML mapping and text, with ``extends:`` resolved (:func:`racl.config.read_yaml`)."""
    return read_yaml(path)


def load_config(path: str | os.PathLike) -> tuple[BuildConfig, str]:
    """Read and validate a YAML build config; returns it with its text (for the card)."""
    raw, text = read_config(path)
    config = parse_config(raw, str(path))
    config.name = config.name or Path(path).stem
    return config, text


def check_paradigm_requirements(config: BuildConfig) -> None:
    """Fail before any work when a configured paradigm's optional package is not installed."""
    from .paradigms import PARADIGMS

    for spec in config.paradigms:
        module = importlib.import_module(PARADIGMS[spec.name])
        for package, hint in getattr(module, "REQUIREMENTS", {}).items():
            if importlib.util.find_spec(package) is None:
                raise ConfigError(f"paradigm {spec.name!r} needs the package {package!r}: {hint}")


# -- planning -------------------------------------------------------------------------------------


@dataclass
class WorkItem:
    """One original clip to process, with its split and the paradigms to reconstruct it with."""

    path: str
    utt_id: str
    label: int
    speaker: str
    corpus: str
    attack: str
    source_id: str
    split: str
    paradigms: list[str]


@dataclass
class Plan:
    """What a build will do, decided before any audio is touched."""

    items: list[WorkItem]
    dropped: list[Dropped]
    sources: list[dict]  # per source: corpus, root, split, read, selected
    speaker_split: dict[str, str]
    unused_held_out_attacks: list[str]

    def shards(self, shard_size: int) -> list[list[WorkItem]]:
        return [self.items[i : i + shard_size] for i in range(0, len(self.items), shard_size)]

    def digest(self) -> str:
        payload = json.dumps([asdict(i) for i in self.items], sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()


def spread(items: list, limit: int | None) -> list:
    """At most ``limit`` items, evenly spread over the list (every part of a sorted corpus appears)."""
    if limit is None or limit >= len(items):
        return list(items)
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def _resolve_root(root: str | None) -> str | None:
    return None if root is None else str(Path(os.path.expandvars(root)).expanduser().absolute())


def read_sources(config: BuildConfig) -> tuple[list[ClipRecord], dict[str, int], list[dict]]:
    """Every selected record, the index of its source per utt_id, and per-source counts.

    All readers are opened first, so a missing corpus path fails before any protocol is read.
    """
    from .corpora import iter_corpus

    readers = []
    for i, spec in enumerate(config.sources):
        try:
            readers.append(iter_corpus(spec.corpus, _resolve_root(spec.root), spec.split, **spec.options))
        except FileNotFoundError as error:
            raise FileNotFoundError(f"sources[{i}] ({spec.corpus}): {error}") from None
        except (ValueError, TypeError) as error:  # a bad split name or reader option
            raise ConfigError(f"sources[{i}] ({spec.corpus}): {error}") from None
    records, summary = [], []
    first_source: dict[str, int] = {}
    for i, (spec, reader) in enumerate(zip(config.sources, readers)):
        try:
            read = sorted(reader, key=lambda r: r.utt_id)
        except (FileNotFoundError, ValueError) as error:  # a malformed protocol line
            raise ConfigError(f"sources[{i}] ({spec.corpus}): {error}") from None
        chosen = spread(read, spec.max_clips)
        for record in chosen:
            if record.utt_id in first_source:
                raise ConfigError(f"utt_id {record.utt_id!r} occurs in sources[{first_source[record.utt_id]}] and "
                                  f"sources[{i}]; utt_ids must be unique across sources")
            first_source[record.utt_id] = i
        records.extend(chosen)
        summary.append({"corpus": spec.corpus, "root": _resolve_root(spec.root), "split": spec.split,
                        "read": len(read), "selected": len(chosen)})
    return records, first_source, summary


def _paradigms_for(record: ClipRecord, split: str, config: BuildConfig) -> list[str]:
    label = LABEL_NAMES[record.label]
    held_out = set(config.splits.test_only_paradigms)
    return [p.name for p in config.paradigms
            if label in p.apply_to and (p.name not in held_out or split == "test")]


def make_plan(config: BuildConfig, limit: int | None = None) -> Plan:
    """Read the sources, apply ``--limit``, split by speaker and list the work, sorted by utt_id."""
    records, origin, sources = read_sources(config)
    records = spread(sorted(records, key=lambda r: r.utt_id), limit)
    for i, source in enumerate(sources):  # what --limit left of each source
        source["selected"] = sum(1 for r in records if origin[r.utt_id] == i)
    assign = {r.utt_id: config.sources[origin[r.utt_id]].assign_split for r in records}
    split_plan = assign_splits(records, config.splits, assign)
    items = [
        WorkItem(r.path, r.utt_id, r.label, r.speaker, r.corpus, r.attack, r.source_id or r.utt_id,
                 split_plan.split_of[r.utt_id], _paradigms_for(r, split_plan.split_of[r.utt_id], config))
        for r in records if r.utt_id in split_plan.split_of
    ]
    attacks = {r.attack for r in records}
    unused = [a for a in config.splits.test_only_attacks if a not in attacks]
    return Plan(sorted(items, key=lambda i: i.utt_id), split_plan.dropped, sources, split_plan.speaker_split, unused)


def fingerprint(config: BuildConfig, plan: Plan, limit: int | None) -> dict:
    """What a resumed build must agree on: the work settings and the exact list of clips."""
    settings = config.work_settings()
    payload = json.dumps({"version": FORMAT_VERSION, "settings": settings, "limit": limit, "plan": plan.digest()},
                         sort_keys=True, default=str)
    return {"fingerprint": hashlib.sha256(payload.encode()).hexdigest(), "version": FORMAT_VERSION,
            "limit": limit, "settings": settings, "plan_sha256": plan.digest(),
            "num_shards": len(plan.shards(config.shard_size))}


# -- shard processing -----------------------------------------------------------------------------


def skip_kind(message: str) -> str:
    """Classify a decoding failure for the card."""
    if "no such file" in message:
        return "missing_file"
    if "empty file" in message or "zero-length" in message:
        return "empty_file"
    return "unreadable"


def encode_audio(wave: np.ndarray, audio_format: str) -> bytes:
    """16-bit FLAC or WAV bytes of a 16 kHz clip (clipped to the 16-bit range first)."""
    import soundfile as sf

    container, subtype = AUDIO_FORMATS[audio_format]
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(wave, -1.0, 32767 / 32768), SAMPLING_RATE, format=container, subtype=subtype)
    return buffer.getvalue()


def work_schema():
    """The shard files' schema: the dataset's features plus the ``split`` the row belongs to."""
    import pyarrow as pa

    schema = FEATURES.arrow_schema
    return schema.append(pa.field("split", pa.string()))


class ShardWorker:
    """Processes shards in one process; reconstructors are built on first use and kept."""

    def __init__(self, config: BuildConfig, work_dir: str, device: str = "cpu"):
        self.config, self.work_dir, self.device = config, Path(work_dir), device
        self._reconstructors: dict = {}

    def reconstructor(self, spec: ParadigmSpec):
        if spec.name not in self._reconstructors:
            from .paradigms import get_reconstructor

            options = dict(spec.options)
            if spec.batch_size:
                options["batch_size"] = spec.batch_size
            self._reconstructors[spec.name] = get_reconstructor(spec.name, **options).to(self.device)
        return self._reconstructors[spec.name]

    def decode(self, items: list[WorkItem], skipped: list[dict]) -> dict[str, np.ndarray]:
        from racl.audio import AudioDecodeError, load_audio

        waves = {}
        for item in items:
            try:
                wave = load_audio(item.path)
            except AudioDecodeError as error:
                skipped.append(_skip(item.utt_id, item.path, skip_kind(str(error)), str(error)))
                continue
            if self.config.max_seconds:
                wave = wave[: int(self.config.max_seconds * SAMPLING_RATE)]
            try:
                waves[item.utt_id] = self.prepare(item.utt_id, wave)
            except ValueError as error:
                skipped.extend(_skip_original(item, error, item.paradigms))
        return waves

    def prepare(self, utt_id: str, wave: np.ndarray) -> np.ndarray:
        """The part of the final processing that comes before reconstruction, if the config asks for it
        (a room of the source's own: its reconstructions are made in it)."""
        if not self.config.before_reconstruction:
            return wave
        from .postprocess import prepare_source, source_room_seed

        return prepare_source(wave, SAMPLING_RATE, room_seed=source_room_seed(utt_id, self.config.seed))

    def reconstruct(self, spec: ParadigmSpec, items: list[WorkItem], waves: dict, skipped: list[dict]) -> dict:
        """``utt_id → reconstruction``; a clip the paradigm fails on is skipped, a paradigm failing on all raises."""
        if not items:
            return {}
        model = self.reconstructor(spec)
        try:
            outputs = model.reconstruct([waves[i.utt_id] for i in items], seed=self.config.seed)
            return {i.utt_id: out for i, out in zip(items, outputs)}
        except Exception:  # noqa: BLE001 - find the clip(s) at fault, one by one
            pass
        out, errors = {}, []
        for item in items:
            try:
                out[item.utt_id] = model.reconstruct([waves[item.utt_id]], seed=self.config.seed)[0]
            except Exception as error:  # noqa: BLE001 - a bad clip must not stop the build
                errors.append(error)
                skipped.append(_skip(f"{item.utt_id}__{spec.name}", item.path, "reconstruction_failed",
                                     f"{spec.name}: {type(error).__name__}: {error}"))
        if not out and len(items) > 1:
            raise RuntimeError(f"paradigm {spec.name!r} failed on every clip of a shard") from errors[0]
        return out

    def finish(self, utt_id: str, wave: np.ndarray) -> np.ndarray:
        """The common final processing (``postprocess.finalize``) when the config asks for it."""
        if not self.config.finalize:
            return wave
        from .postprocess import clip_seed, finalize

        return finalize(wave, SAMPLING_RATE, seed=clip_seed(f"{self.config.seed}:{utt_id}"),
                        source_prepared=self.config.before_reconstruction)

    def row(self, item: WorkItem, wave: np.ndarray, paradigm: str | None) -> dict:
        utt_id = f"{item.utt_id}__{paradigm}" if paradigm else item.utt_id
        if paradigm is None:
            label, attack, source_id = item.label, item.attack, item.source_id
        else:  # a reconstruction is spoof; its generating system is the paradigm (after the source's attack)
            label, source_id = SPOOF, item.utt_id
            attack = paradigm if item.label == BONAFIDE else f"{item.attack}+{paradigm}"
        data = encode_audio(wave, self.config.audio_format)
        return {"audio": {"bytes": data, "path": f"{utt_id}.{self.config.audio_format}"}, "label": label,
                "utt_id": utt_id, "source_id": source_id, "is_reconstructed": paradigm is not None,
                "reconstruction": paradigm or NO_RECONSTRUCTION, "attack": attack, "speaker": item.speaker,
                "corpus": item.corpus, "duration": len(wave) / SAMPLING_RATE, "split": item.split}

    def rows(self, items: list[WorkItem], waves: dict, recon: dict, skipped: list[dict]) -> list[dict]:
        rows = []
        for item in items:
            if item.utt_id not in waves:
                continue
            variants = [(None, waves[item.utt_id])] + [(p, recon[p][item.utt_id]) for p in item.paradigms
                                                       if item.utt_id in recon.get(p, {})]
            for paradigm, wave in variants:
                utt_id = f"{item.utt_id}__{paradigm}" if paradigm else item.utt_id
                try:
                    final = self.finish(utt_id, wave)
                except ValueError as error:
                    if paradigm is None:
                        skipped.extend(_skip_original(item, error, [p for p, _ in variants[1:]]))
                        break
                    skipped.append(_skip(utt_id, item.path, "postprocess_failed", str(error)))
                    continue
                rows.append(self.row(item, final, paradigm))
        return sorted(rows, key=lambda r: r["utt_id"])

    def process(self, shard_id: int, items: list[WorkItem]) -> dict:
        """Write ``shard-XXXXX.parquet`` (atomically); returns counts for the progress report."""
        skipped: list[dict] = []
        waves = self.decode(items, skipped)
        recon = {}
        for spec in self.config.paradigms:
            todo = [i for i in items if i.utt_id in waves and spec.name in i.paradigms]
            recon[spec.name] = self.reconstruct(spec, todo, waves, skipped)
        rows = self.rows(items, waves, recon, skipped)
        write_shard(self.work_dir, shard_id, rows, skipped)
        return {"shard": shard_id, "rows": len(rows), "skipped": len(skipped)}


def _skip(utt_id: str, path: str, kind: str, reason: str) -> dict:
    return {"utt_id": utt_id, "path": path, "kind": kind, "reason": reason}


def _skip_original(item: WorkItem, error: Exception, paradigms: list[str]) -> list[dict]:
    """An original the final processing rejects, and its reconstructions: no original, no pair."""
    return [_skip(item.utt_id, item.path, "postprocess_failed", str(error))] + [
        _skip(f"{item.utt_id}__{p}", item.path, "postprocess_failed", "its original failed the final processing")
        for p in paradigms]


def shard_path(work_dir: Path, shard_id: int) -> Path:
    return Path(work_dir) / f"shard-{shard_id:05d}.parquet"


def write_shard(work_dir: Path, shard_id: int, rows: list[dict], skipped: list[dict]) -> Path:
    """Write to a temporary name, then rename: a shard file exists only once it is complete."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = work_schema()
    schema = schema.with_metadata({**(schema.metadata or {}), SKIPPED_META: json.dumps(skipped).encode()})
    table = pa.Table.from_pylist(rows, schema=schema)
    final = shard_path(work_dir, shard_id)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, row_group_size=ROW_GROUP_SIZE)
    os.replace(tmp, final)
    return final


# Pool workers (spawn): one ShardWorker per process.
_POOL_WORKER: ShardWorker | None = None


def _pool_init(config: BuildConfig, work_dir: str, threads: int) -> None:
    global _POOL_WORKER
    import torch

    torch.set_num_threads(threads)
    _POOL_WORKER = ShardWorker(config, work_dir, "cpu")


def _pool_run(job: tuple[int, list[WorkItem]]) -> dict:
    return _POOL_WORKER.process(*job)


def torch_threads(requested: int | None, device: str) -> int | None:
    """Intra-op threads per build process: 1 on CPU unless asked, torch's default on a GPU.

    The build parallelises over shards (``--num-proc``, accelerate ranks); per-clip ops are small,
    and extra intra-op threads on a busy CPU spin more than they compute (measured: Griffin-Lim
    10x slower with 2 threads than with 1 on a loaded 2-core machine).
    """
    if requested:
        return requested
    return 1 if device == "cpu" else None


def run_shards(config: BuildConfig, jobs: list[tuple[int, list[WorkItem]]], work_dir: Path, num_proc: int,
               state, threads: int | None = None) -> None:
    """Process the pending ``jobs``: in this process, in a spawn pool, or split across accelerate ranks."""
    import torch
    from tqdm.auto import tqdm

    device = "cpu" if state.device.type == "cpu" else str(state.device)
    threads = torch_threads(threads, device)
    if num_proc > 1 and len(jobs) > 1 and state.num_processes == 1:
        import multiprocessing

        module = importlib.import_module("datasets_scripts.build")  # picklable by name, also under -m
        context = multiprocessing.get_context("spawn")
        with context.Pool(min(num_proc, len(jobs)), module._pool_init, (config, str(work_dir), threads or 1)) as pool:
            for _ in tqdm(pool.imap_unordered(module._pool_run, jobs), total=len(jobs), desc="shards", unit="shard"):
                pass
        return
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        _run_here(config, jobs, work_dir, state, device)
    finally:
        torch.set_num_threads(previous)  # the caller's process keeps its own setting


def _run_here(config: BuildConfig, jobs: list, work_dir: Path, state, device: str) -> None:
    """This process's share of ``jobs`` (all of them outside accelerate)."""
    from tqdm.auto import tqdm

    if state.num_processes > 1:
        with state.split_between_processes(jobs) as mine:
            worker = ShardWorker(config, str(work_dir), device)
            bar = tqdm(mine, desc=f"shards (rank {state.process_index})", unit="shard",
                       disable=not state.is_local_main_process)
            for job in bar:
                worker.process(*job)
        return
    worker = ShardWorker(config, str(work_dir), device)
    for job in tqdm(jobs, desc="shards", unit="shard"):
        worker.process(*job)


# -- assembly -------------------------------------------------------------------------------------

SMALL_COLUMNS = ["utt_id", "source_id", "is_reconstructed", "reconstruction", "attack", "label", "speaker",
                 "corpus", "duration", "split"]


def read_shard_index(work_dir: Path, num_shards: int) -> tuple[list[dict], list[dict], list[list[bool]]]:
    """Pass 1 over the shards: the small columns, the skipped clips, and which rows to keep.

    A ``utt_id`` seen before is not kept (a shard can only repeat one after a bug, but the final
    dataset must hold each clip once).
    """
    import pyarrow.parquet as pq

    rows, skipped, keep, seen = [], [], [], set()
    for shard_id in range(num_shards):
        path = shard_path(work_dir, shard_id)
        meta = pq.read_schema(path).metadata or {}
        skipped.extend(json.loads(meta.get(SKIPPED_META, b"[]")))
        table = pq.read_table(path, columns=SMALL_COLUMNS).to_pylist()
        mask = []
        for row in table:
            mask.append(row["utt_id"] not in seen)
            if mask[-1]:
                seen.add(row["utt_id"])
                rows.append(row)
            else:
                LOG.warning("duplicate utt_id %s in %s: kept the first", row["utt_id"], path.name)
        keep.append(mask)
    return rows, skipped, keep


def source_fixes(rows: list[dict]) -> dict[str, str]:
    """utt_id → corrected source_id for originals whose corpus pairing points outside their split.

    Reconstructions always point at their original in the same shard; a corpus-given pairing
    (WaveFake, CodecFake) may name a clip that was skipped or sits in another split.
    """
    ids_by_split: dict[str, set] = {s: set() for s in SPLITS}
    for row in rows:
        ids_by_split[row["split"]].add(row["utt_id"])
    fixes = {}
    for row in rows:
        if row["source_id"] != row["utt_id"] and row["source_id"] not in ids_by_split[row["split"]]:
            if row["is_reconstructed"]:
                raise AssertionError(f"{row['utt_id']}: its original {row['source_id']} is missing from {row['split']}")
            fixes[row["utt_id"]] = row["utt_id"]
    for utt_id, source in fixes.items():
        LOG.info("source_id of %s reset to itself: its paired clip is not in the same split", utt_id)
    return fixes


class SplitWriter:
    """Rolling Parquet writer of one split: a new file once ``max_bytes`` of Arrow data are in one."""

    def __init__(self, folder: Path, split: str, max_bytes: int):
        self.folder, self.split, self.max_bytes = folder, split, max_bytes
        self.files: list[Path] = []
        self.writer, self.current_bytes = None, 0
        self.num_rows = self.num_bytes = 0

    def write(self, table) -> None:
        import pyarrow.parquet as pq

        if self.writer is not None and self.current_bytes and self.current_bytes + table.nbytes > self.max_bytes:
            self.writer.close()
            self.writer = None
        if self.writer is None:
            self.files.append(self.folder / f"{self.split}.part{len(self.files):05d}")
            self.writer, self.current_bytes = pq.ParquetWriter(self.files[-1], FEATURES.arrow_schema), 0
        self.writer.write_table(table, row_group_size=ROW_GROUP_SIZE)
        self.current_bytes += table.nbytes
        self.num_rows, self.num_bytes = self.num_rows + table.num_rows, self.num_bytes + table.nbytes

    def close(self) -> list[Path]:
        """Close and rename to ``{split}-XXXXX-of-YYYYY.parquet``; an empty split writes no file.

        (``load_dataset`` cannot load a split of zero rows, so an empty split is left out.)
        """
        if self.writer is None:
            return []
        self.writer.close()
        total = len(self.files)
        final = [p.with_name(f"{self.split}-{i:05d}-of-{total:05d}.parquet") for i, p in enumerate(self.files)]
        for src, dst in zip(self.files, final):
            os.replace(src, dst)
        return final


def write_data(work_dir: Path, output_dir: Path, num_shards: int, keep: list[list[bool]], fixes: dict,
               max_bytes: int) -> dict[str, dict]:
    """Pass 2: stream every shard once into the per-split writers; replace ``data/`` at the end."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    staging = work_dir / "assemble"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    writers = {s: SplitWriter(staging, s, max_bytes) for s in SPLITS}
    for shard_id in range(num_shards):
        table = pq.read_table(shard_path(work_dir, shard_id)).filter(pa.array(keep[shard_id], pa.bool_()))
        if fixes:
            ids = table.column("utt_id").to_pylist()
            sources = [fixes.get(u, s) for u, s in zip(ids, table.column("source_id").to_pylist())]
            table = table.set_column(table.schema.get_field_index("source_id"), "source_id", pa.array(sources, pa.string()))
        for split, writer in writers.items():
            part = table.filter(pc.equal(table.column("split"), split)).drop_columns(["split"])
            if part.num_rows:
                writer.write(part.cast(FEATURES.arrow_schema))
    info = {}
    for split, writer in writers.items():
        files = writer.close()
        if not files:
            LOG.warning("the %s split is empty: no data file, and the dataset has no %s split", split, split)
            continue
        info[split] = {"num_examples": writer.num_rows, "num_bytes": writer.num_bytes,
                       "files": [f.name for f in files], "download_size": sum(f.stat().st_size for f in files)}
    data_dir = output_dir / DATA_DIR
    shutil.rmtree(data_dir, ignore_errors=True)
    os.replace(staging, data_dir)
    return info


def assemble(config: BuildConfig, plan: Plan, work_dir: Path, output_dir: Path, num_shards: int) -> dict:
    """Final ``data/`` files and the summary the card is written from."""
    rows, skipped, keep = read_shard_index(work_dir, num_shards)
    fixes = source_fixes(rows)
    for row in rows:
        row["source_id"] = fixes.get(row["utt_id"], row["source_id"])
    info = write_data(work_dir, output_dir, num_shards, keep, fixes, int(config.max_file_mb * 2**20))
    written = sum(v["num_examples"] for v in info.values())
    assert written == len(rows) == len({r["utt_id"] for r in rows}), "utt_ids must be unique in the dataset"
    all_skipped = [asdict(d) for d in plan.dropped] + skipped
    for entry in all_skipped:
        LOG.info("SKIPPED [%s] %s (%s): %s", entry["kind"], entry["utt_id"], entry["path"], entry["reason"])
    return {"rows": rows, "skipped": all_skipped, "info": info}


# -- the command ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="racl-build", description="Build the hard-sample audio deepfake dataset (sharded Parquet + card).")
    parser.add_argument("--config", required=True, help="YAML build config (see configs/data/README.md)")
    parser.add_argument("--output-dir", help="output folder (default: the config's output_dir or build/data/<config name>)")
    parser.add_argument("--num-proc", type=int, default=1, help="CPU worker processes (not with accelerate launch)")
    parser.add_argument("--torch-threads", type=int,
                        help="torch intra-op threads per build process (default: 1 on CPU, torch's default on a GPU)")
    parser.add_argument("--limit", type=int, help="use at most N original clips (evenly spread; quick trial builds)")
    parser.add_argument("--overwrite", action="store_true", help="discard a previous build with another config in --output-dir")
    parser.add_argument("--push-to-hub", metavar="REPO", help="upload the finished folder to this Hub dataset repo")
    parser.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    args = parser.parse_args(argv)
    if args.num_proc < 1:
        parser.error("--num-proc must be at least 1")
    if args.torch_threads is not None and args.torch_threads < 1:
        parser.error("--torch-threads must be at least 1")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    return args


def command_line(argv: list[str], num_processes: int) -> str:
    """The command as a user would type it again (for the card)."""
    if num_processes > 1:
        prefix = f"accelerate launch --multi_gpu --num_processes {num_processes} -m datasets_scripts.build"
    elif Path(sys.argv[0]).name == "racl-build":
        prefix = "racl-build"
    else:
        prefix = "python -m datasets_scripts.build"
    return f"{prefix} {shlex.join(argv)}".strip()


def output_dir_for(args: argparse.Namespace, config: BuildConfig) -> Path:
    return Path(args.output_dir or config.output_dir or f"build/data/{config.name}").expanduser().absolute()


def check_resume(output_dir: Path, stamp: dict, overwrite: bool) -> None:
    """Refuse to mix shards of two different configs in one folder."""
    path = output_dir / WORK_DIR / FINGERPRINT
    if overwrite or not path.is_file():
        return
    previous = json.loads(path.read_text())
    if previous.get("fingerprint") != stamp["fingerprint"]:
        raise ConfigError(
            f"{output_dir} holds a build with another config, corpus listing or --limit "
            f"({path}); use a new --output-dir or pass --overwrite to discard it")


def prepare_output(output_dir: Path, stamp: dict, overwrite: bool) -> Path:
    """Create (or reset, with ``overwrite``) the folder; write the fingerprint; drop half-written shards."""
    work_dir = output_dir / WORK_DIR
    if overwrite and work_dir.exists():
        previous = (work_dir / FINGERPRINT).read_text() if (work_dir / FINGERPRINT).is_file() else None
        if previous is None or json.loads(previous).get("fingerprint") != stamp["fingerprint"]:
            for name in (WORK_DIR, DATA_DIR):
                shutil.rmtree(output_dir / name, ignore_errors=True)
            for name in ("README.md", LOG_FILE):
                (output_dir / name).unlink(missing_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    for stale in work_dir.glob(".shard-*.tmp-*"):
        stale.unlink()
    (work_dir / FINGERPRINT).write_text(json.dumps(stamp, indent=2, default=str))
    return work_dir


def setup_logging(output_dir: Path | None, is_main: bool) -> None:
    LOG.setLevel(logging.INFO)
    LOG.propagate = False
    for handler in list(LOG.handlers):
        LOG.removeHandler(handler)
        handler.close()
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("racl-build: %(message)s"))
    LOG.addHandler(console)
    if output_dir is not None and is_main:
        file_handler = logging.FileHandler(output_dir / LOG_FILE, encoding="utf-8")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        LOG.addHandler(file_handler)


def validate(args: argparse.Namespace) -> tuple[BuildConfig, str, Plan, dict]:
    """Everything that can fail before work: config, paradigms, corpora, split plan, fingerprint."""
    config, text = load_config(args.config)
    check_paradigm_requirements(config)
    plan = make_plan(config, args.limit)
    if not plan.items:
        raise ConfigError(f"{args.config}: the sources yield no clips to build (after splitting and --limit)")
    return config, text, plan, fingerprint(config, plan, args.limit)


def push(output_dir: Path, repo: str, private: bool) -> None:
    """Upload the finished folder (data/ and README.md) as a Hub dataset repo."""
    from racl.hub import push_folder

    push_folder(output_dir, repo, repo_type="dataset", private=private, allow_patterns=[f"{DATA_DIR}/*.parquet", "README.md"],
                commit_message="racl-build: hard-sample dataset")
    print(f"racl-build: uploaded {output_dir} to https://huggingface.co/datasets/{repo}")


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit status (2: a config, corpus or paradigm problem, nothing done)."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    import torch
    from accelerate import PartialState

    # cpu=True where there is no GPU: accelerate then runs torchrun's ranks as MULTI_CPU (gloo)
    # instead of seeing one undistributed process per rank.
    # A long timeout: ranks wait at barriers while the slowest finishes its shards or rank 0 assembles.
    state = PartialState(cpu=not torch.cuda.is_available(), timeout=timedelta(hours=BARRIER_TIMEOUT_H))
    if state.num_processes > 1 and args.num_proc > 1:
        print("racl-build: error: use either accelerate launch or --num-proc, not both", file=sys.stderr)
        return 2
    setup_logging(None, state.is_main_process)
    try:
        config, config_text, plan, stamp = validate(args)
        output_dir = output_dir_for(args, config)
        check_resume(output_dir, stamp, args.overwrite)
    except (ConfigError, FileNotFoundError, ValueError, ImportError) as error:
        print(f"racl-build: error: {error}", file=sys.stderr)
        return 2
    run(args, argv, state, config, config_text, plan, stamp, output_dir)
    return 0


def run(args, argv, state, config, config_text, plan, stamp, output_dir: Path) -> None:
    """Prepare the folder, process the pending shards on every rank, assemble on the main one."""
    started = time.time()
    if state.is_main_process:
        prepare_output(output_dir, stamp, args.overwrite)
    state.wait_for_everyone()
    setup_logging(output_dir, state.is_main_process)
    work_dir = output_dir / WORK_DIR
    shards = plan.shards(config.shard_size)
    jobs = [(k, items) for k, items in enumerate(shards) if not shard_path(work_dir, k).is_file()]
    if state.is_main_process:
        workers = f"{state.num_processes} processes" if state.num_processes > 1 else f"{args.num_proc} worker(s)"
        LOG.info("build started: %s (%s, device %s)", command_line(argv, state.num_processes), workers, state.device)
        LOG.info("%d clips in %d shards; %d finished before, %d to do", len(plan.items), len(shards),
                 len(shards) - len(jobs), len(jobs))
        for attack in plan.unused_held_out_attacks:
            LOG.warning("test-only attack %r occurs in no source", attack)
    state.wait_for_everyone()  # every rank has listed the pending shards before any writes one
    run_shards(config, jobs, work_dir, args.num_proc, state, args.torch_threads)
    state.wait_for_everyone()
    if state.is_main_process:
        finish(config, config_text, plan, args, argv, output_dir, len(shards), started, state.num_processes)
    state.wait_for_everyone()


def finish(config, config_text, plan, args, argv, output_dir, num_shards, started, num_processes) -> None:
    """Assemble, write the card, report, and push if asked."""
    from .card import write_card

    result = assemble(config, plan, output_dir / WORK_DIR, output_dir, num_shards)
    write_card(output_dir, config=config, config_text=config_text, plan=plan, result=result,
               command=command_line(argv, num_processes))
    rows, skipped = len(result["rows"]), len(result["skipped"])
    counts = ", ".join(f"{s} {result['info'].get(s, {}).get('num_examples', 0)}" for s in SPLITS)
    LOG.info("build finished in %.1f s: %d rows (%s), %d skipped", time.time() - started, rows, counts, skipped)
    print(f"racl-build: {rows} rows ({counts}), {skipped} skipped (see {output_dir / LOG_FILE}) → {output_dir}")
    if args.push_to_hub:
        push(output_dir, args.push_to_hub, args.private)


if __name__ == "__main__":
    sys.exit(main())
