"""Speaker-disjoint train / validation / test assignment (docs/design.md#splits).

Every speaker belongs to exactly one split, decided in this order:

1. an explicit speaker list (``validation: [s5]``, ``test: [s6]``);
2. the split its clips are *forced* into, by the source (``assign_split``) or by the corpus's own
   split (``source_split_map``, e.g. ASVspoof dev → validation); a speaker whose forced clips
   disagree goes where most of them go (ties: test, then validation, then train);
3. otherwise a seeded shuffle of the remaining speakers cut by the ``validation`` / ``test``
   fractions.

Clips are never moved to another speaker's split: a clip forced into a split other than its
speaker's, and a clip of a test-only attack whose speaker is not in test, are **dropped** with a
reason, so that no speaker and no held-out attack crosses the split boundary.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from .schema import ClipRecord

SPLITS = ("train", "validation", "test")
TIE_ORDER = ("test", "validation", "train")  # where a speaker with an even forced vote goes


@dataclass
class SplitSpec:
    """The ``splits`` section of a build config."""

    by: str = "speaker"
    validation: float | list[str] = 0.1
    test: float | list[str] = 0.2
    seed: int = 0
    test_only_attacks: list[str] = field(default_factory=list)
    test_only_paradigms: list[str] = field(default_factory=list)
    source_split_map: dict[str, str] = field(default_factory=dict)


@dataclass
class Dropped:
    """A clip left out of the dataset, with a machine-readable ``kind`` and a sentence for people."""

    utt_id: str
    path: str
    kind: str
    reason: str


@dataclass
class SplitPlan:
    """``split_of[utt_id]`` for every kept clip, the speaker assignment, and what was dropped."""

    split_of: dict[str, str]
    speaker_split: dict[str, str]
    dropped: list[Dropped]
    how: dict[str, str]  # speaker → "list" | "forced" | "fraction": why it is where it is


def forced_split(record: ClipRecord, spec: SplitSpec, assign: str | None) -> str | None:
    """The split a clip is forced into by its source or its corpus's own split, if any."""
    if assign:
        return assign
    own = record.extra.get("split") if spec.source_split_map else None
    return spec.source_split_map.get(own) if own is not None else None


def _vote(splits: Counter) -> str:
    best = max(splits.values())
    return next(s for s in TIE_ORDER if splits.get(s) == best)


def _fraction_cut(speakers: list[str], spec: SplitSpec) -> dict[str, str]:
    """Seeded shuffle of ``speakers`` cut into test / validation / train by the fractions."""
    order = sorted(speakers)
    random.Random(spec.seed).shuffle(order)
    n = len(order)

    def count(fraction) -> int:
        if isinstance(fraction, list) or not fraction:
            return 0
        # At least one speaker per requested split once there are enough to keep one for training.
        return max(1, round(fraction * n)) if n >= 3 else round(fraction * n)

    n_test, n_val = count(spec.test), count(spec.validation)
    n_test, n_val = min(n_test, n), min(n_val, max(0, n - n_test))
    assigned = {s: "test" for s in order[:n_test]}
    assigned.update({s: "validation" for s in order[n_test : n_test + n_val]})
    assigned.update({s: "train" for s in order[n_test + n_val :]})
    return assigned


def assign_speakers(records: list[ClipRecord], forced: dict[str, str | None], spec: SplitSpec) -> tuple[dict, dict]:
    """speaker → split (and speaker → how it was decided)."""
    listed: dict[str, str] = {}
    for split in ("validation", "test"):
        value = getattr(spec, split)
        for speaker in value if isinstance(value, list) else []:
            if listed.setdefault(speaker, split) != split:
                raise ValueError(f"splits: speaker {speaker!r} is listed for both validation and test")
    votes: dict[str, Counter] = defaultdict(Counter)
    for record in records:
        if forced.get(record.utt_id):
            votes[record.speaker][forced[record.utt_id]] += 1
    speaker_split, how = dict(listed), {s: "list" for s in listed}
    for speaker, counts in votes.items():
        if speaker not in speaker_split:
            speaker_split[speaker], how[speaker] = _vote(counts), "forced"
    free = sorted({r.speaker for r in records} - set(speaker_split))
    for speaker, split in _fraction_cut(free, spec).items():
        speaker_split[speaker], how[speaker] = split, "fraction"
    return speaker_split, how


def assign_splits(records: list[ClipRecord], spec: SplitSpec, assign: dict[str, str | None] | None = None) -> SplitPlan:
    """Split ``records`` speaker-disjointly; ``assign`` maps utt_id → a source's ``assign_split``."""
    if spec.by != "speaker":
        raise ValueError(f"splits.by: only 'speaker' is supported, got {spec.by!r}")
    assign = assign or {}
    forced = {r.utt_id: forced_split(r, spec, assign.get(r.utt_id)) for r in records}
    speaker_split, how = assign_speakers(records, forced, spec)
    held_out = set(spec.test_only_attacks)
    split_of: dict[str, str] = {}
    dropped: list[Dropped] = []
    for record in records:
        split, want = speaker_split[record.speaker], forced[record.utt_id]
        if want and want != split:
            dropped.append(Dropped(record.utt_id, record.path, "speaker_split_conflict",
                                   f"its source puts it in {want}, but speaker {record.speaker!r} is in {split}; "
                                   "kept out so that no speaker is in two splits"))
        elif record.attack in held_out and split != "test":
            dropped.append(Dropped(record.utt_id, record.path, "held_out_attack_outside_test",
                                   f"attack {record.attack!r} is test-only, but speaker {record.speaker!r} is in {split}"))
        else:
            split_of[record.utt_id] = split
    return SplitPlan(split_of, speaker_split, dropped, how)
