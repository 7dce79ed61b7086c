"""The build config: its schema (:class:`BuildConfig`), parsing with one clear error per bad key, loading.

``configs/data/README.md`` documents every key. Parsing checks names against the corpus and paradigm
registries, so a typo fails before any corpus is read; :meth:`BuildConfig.work_settings` is what
the shard contents (and so the resume fingerprint) depend on.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from racl.config import ConfigError, check_keys, fail, read_yaml

from .schema import LABEL_NAMES
from .splits import SPLITS, SplitSpec

# audio_format → (soundfile container, subtype) of the encoded clips
AUDIO_FORMATS = {"flac": ("FLAC", "PCM_16"), "wav": ("WAV", "PCM_16")}



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
    vary_channel: list[str] = field(default_factory=list)  # parts of postprocess.VARY_PARTS
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
POSTPROCESS_KEYS = {"finalize", "before_reconstruction", "vary_channel"}


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


def _vary_channel(where: str, value) -> list[str]:
    """``true`` = every part of the per-clip channel, ``false`` = none, or a list of parts."""
    from .postprocess import VARY_PARTS

    if isinstance(value, bool):
        return list(VARY_PARTS) if value else []
    if not isinstance(value, list) or not value or set(value) - set(VARY_PARTS) or len(set(value)) != len(value):
        fail(where, "postprocess.vary_channel", f"expected true, false or a list of {', '.join(VARY_PARTS)}, got {value!r}")
    return [p for p in VARY_PARTS if p in value]


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
    vary = _vary_channel(where, postprocess.get("vary_channel", False))
    if vary and not finalize:
        fail(where, "postprocess.vary_channel", "needs `finalize: true` (it varies that processing per clip)")
    return BuildConfig(
        sources=[_parse_source(where, i, s) for i, s in enumerate(sources)],
        paradigms=paradigms,
        splits=_parse_splits(where, raw.get("splits") or {}, seed, names),
        finalize=finalize,
        before_reconstruction=before,
        vary_channel=vary,
        max_seconds=_typed(where, "max_seconds", raw.get("max_seconds"), "number", none=True),
        seed=seed,
        shard_size=_typed(where, "shard_size", raw.get("shard_size", 200), "pos_int"),
        audio_format=_choice(where, "audio_format", raw.get("audio_format", "flac"), AUDIO_FORMATS),
        max_file_mb=_typed(where, "max_file_mb", raw.get("max_file_mb", 500.0), "number"),
        name=_typed(where, "name", raw.get("name", ""), "str") if raw.get("name") else "",
        description=str(raw.get("description") or ""),
        output_dir=_typed(where, "output_dir", raw.get("output_dir"), "str", none=True),
    )


def load_config(path: str | os.PathLike) -> tuple[BuildConfig, str]:
    """Read and validate a YAML build config; returns it with its text (for the card)."""
    raw, text = read_yaml(path)
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


__all__ = ["AUDIO_FORMATS", "BuildConfig", "ConfigError", "ParadigmSpec", "SourceSpec", "check_paradigm_requirements",
           "load_config", "parse_config"]
