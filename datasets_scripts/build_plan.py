"""The build plan: every source read and split by speaker, the work listed before any audio is touched.

The plan is sorted by ``utt_id`` and cut into shards of ``shard_size`` clips; its digest and the
config's work settings make the fingerprint a resumed build must agree on.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from racl.config import ConfigError

from .build_config import BuildConfig
from .corpora import spread
from .schema import LABEL_NAMES, ClipRecord
from .splits import Dropped, assign_splits

FORMAT_VERSION = 1  # bump when the shard contents change for the same config



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
        # Named as its rows name it (a folder source may say `corpus: demo`): the card's licence follows that name.
        named = {record.corpus for record in chosen}
        summary.append({"corpus": named.pop() if len(named) == 1 else spec.corpus, "root": _resolve_root(spec.root), "split": spec.split,
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
