"""ASVspoof 2019 logical access (LA), countermeasure protocols.

Layout of the released ``LA`` folder (Edinburgh DataShare, handle 10283/3336)::

    <root>/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.train.trn.txt
                                        ASVspoof2019.LA.cm.dev.trl.txt
                                        ASVspoof2019.LA.cm.eval.trl.txt
    <root>/ASVspoof2019_LA_{train,dev,eval}/flac/<UTT>.flac
    <root>/ASVspoof2019_LA_asv_scores/ASVspoof2019.LA.asv.{dev,eval}.gi.trl.scores.txt

Protocol line: ``SPEAKER UTT - SYSTEM KEY``, e.g. ``LA_0079 LA_T_1138215 - - bonafide`` or
``LA_0098 LA_T_1000137 - A04 spoof`` (SYSTEM ``-`` for bona fide; A01-A06 in train/dev, A07-A19 in
eval). ``root`` may also be the folder that contains ``LA/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..schema import NO_ATTACK, ClipRecord, label_id
from . import check_split, malformed, protocol_rows, require_dir, require_file

CORPUS = "asvspoof2019_la"
SPLITS = ("train", "dev", "eval")
PROTOCOL_DIR = "ASVspoof2019_LA_cm_protocols"
PROTOCOLS = {
    "train": "ASVspoof2019.LA.cm.train.trn.txt",
    "dev": "ASVspoof2019.LA.cm.dev.trl.txt",
    "eval": "ASVspoof2019.LA.cm.eval.trl.txt",
}
KEYS = ("bonafide", "spoof")


def la_root(root: str) -> Path:
    """The ``LA`` folder: ``root`` itself or ``root/LA``."""
    root_path = require_dir(root, "the ASVspoof 2019 LA folder (with ASVspoof2019_LA_cm_protocols/)")
    if not (root_path / PROTOCOL_DIR).is_dir() and (root_path / "LA" / PROTOCOL_DIR).is_dir():
        return root_path / "LA"
    return root_path


def protocol_path(root: Path, split: str) -> Path:
    return require_file(root / PROTOCOL_DIR / PROTOCOLS[split], f"the ASVspoof 2019 LA {split} CM protocol")


def asv_scores_file(root: str, split: str) -> str | None:
    """The organisers' ASV score file of ``split`` (dev/eval; what min t-DCF needs), or None if absent."""
    path = la_root(root) / "ASVspoof2019_LA_asv_scores" / f"ASVspoof2019.LA.asv.{split}.gi.trl.scores.txt"
    return str(path) if path.is_file() else None


def parse_line(fields: list[str], path: Path, line_no: int) -> tuple[str, str, str, int]:
    """(speaker, utt, attack, label) of one protocol row."""
    speaker, utt, _, system, key = fields
    if key not in KEYS:
        raise malformed(path, line_no, f"key {key!r} is neither bonafide nor spoof")
    if key == "spoof" and system == NO_ATTACK:
        raise malformed(path, line_no, "spoof row without a system id")
    return speaker, utt, system if key == "spoof" else NO_ATTACK, label_id(key)


def _records(root: Path, split: str, protocol: Path) -> Iterator[ClipRecord]:
    audio_dir = root / f"ASVspoof2019_LA_{split}" / "flac"
    for line_no, fields in protocol_rows(protocol, 5, 5):
        speaker, utt, attack, label = parse_line(fields, protocol, line_no)
        yield ClipRecord(str(audio_dir / f"{utt}.flac"), utt, label, speaker, CORPUS, attack, extra={"split": split})


def iter_clips(root: str, split: str | None = None) -> Iterator[ClipRecord]:
    """Clips of ``split`` (train/dev/eval; None = all three, in that order)."""
    la = la_root(root)
    splits = [check_split(split, SPLITS, CORPUS)] if split else list(SPLITS)
    protocols = [(s, protocol_path(la, s)) for s in splits]  # all checked before the first record
    return (record for s, protocol in protocols for record in _records(la, s, protocol))
