"""DiffSSD (Bhagtani et al., ICASSP 2025, arXiv 2409.13049): diffusion-based and commercial TTS/VC.

Published as the Hub dataset ``purdueviperlab/diffssd``: ``generated_speech.tar`` (the synthetic
speech only) and ``train_val_test_splits.csv``, which lists every clip, real and synthetic, with
the columns ``filename,method_name,category,source,set,target``:

* ``filename``: relative path; synthetic clips under ``generated_speech/<method>/...``, real clips
  as ``ljspeech/<LJ id>.wav`` and ``librispeech/<subset>/<speaker>/<chapter>/<id>.flac``: the real
  speech is LJ Speech and LibriSpeech (dev/test clean/other), downloaded separately;
* ``method_name``: ``ljspeech`` / ``librispeech`` for real clips, else the generator (``gradtts``,
  ``elevenlabs``, ``openvoicev2``, ...); ``set``: ``train`` / ``val`` / ``test``; ``target``: 0 real,
  1 synthetic; ``category`` and ``source`` are kept in ``extra``.

The file has been reported to start with stray lines before its header; rows before the line whose
first cell is ``filename`` are skipped. Real clips are looked up at ``<root>/<filename>``, then under
the official folder names (``LJSpeech-1.1/wavs/``, ``LibriSpeech/``), directly in ``root``,
``root/real_speech`` or ``real_root``; the first that exists is used.

Not verified against a downloaded copy: the layout inside ``generated_speech/``. We take the
folder after the method as the speaker when there is one (``speaker_5448`` → ``5448``, the
LibriSpeech voice that was cloned) and use ``unknown`` otherwise. IDs: real clips keep their
corpus IDs (``LJ001-0001``, ``84-121123-0000``); synthetic ones are their path below
``generated_speech/`` with ``-`` for the separators.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from ..schema import BONAFIDE, NO_ATTACK, ClipRecord, label_id
from . import check_split, malformed, path_id, require_dir, require_file, unique_ids

CORPUS = "diffssd"
SPLITS = ("train", "val", "test")
SPLIT_FILE = "train_val_test_splits.csv"
COLUMNS = ("filename", "method_name", "category", "source", "set", "target")
REAL_FOLDERS = {"ljspeech": "LJSpeech-1.1/wavs", "librispeech": "LibriSpeech"}
GENERATED = "generated_speech"


def split_file(root: Path, metadata: str | None) -> Path:
    if metadata:
        return require_file(metadata, f"DiffSSD's {SPLIT_FILE}")
    return require_file(root / SPLIT_FILE, f"DiffSSD's {SPLIT_FILE} (from the Hub dataset purdueviperlab/diffssd)")


def rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, {column: text})`` after the header row, whatever precedes it."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = next((cells for cells in reader if cells and cells[0].strip() == "filename"), None)
        if header is None:
            raise ValueError(f"{path}: no header row starting with 'filename'; expected columns {','.join(COLUMNS)}")
        header = [h.strip() for h in header]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise ValueError(f"{path}, line {reader.line_num}: header lacks {', '.join(missing)}")
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise malformed(path, reader.line_num, f"expected {len(header)} fields, got {len(cells)}")
            yield reader.line_num, dict(zip(header, (c.strip() for c in cells)))


def real_candidates(filename: str, roots: list[Path]) -> list[Path]:
    rel = PurePosixPath(filename)
    renamed = PurePosixPath(REAL_FOLDERS[rel.parts[0]], *rel.parts[1:]) if rel.parts[0] in REAL_FOLDERS else rel
    return [base / r for base in roots for r in (rel, renamed)]


def locate(root: Path, filename: str, real_roots: list[Path]) -> Path:
    direct = root / filename
    if direct.exists() or filename.startswith(GENERATED):
        return direct
    return next((c for c in real_candidates(filename, real_roots) if c.exists()), direct)


def identity(filename: str, method: str, label: int) -> tuple[str, str]:
    """(utt_id, speaker) from the relative path."""
    parts = PurePosixPath(filename).parts
    if label == BONAFIDE:
        if method == "ljspeech":
            return PurePosixPath(filename).stem, "LJ"
        speaker = parts[2] if method == "librispeech" and len(parts) > 3 else "unknown"  # librispeech/<subset>/<spk>/
        return PurePosixPath(filename).stem, speaker
    below = parts[1:] if parts[0] == GENERATED else parts
    speaker = below[1].removeprefix("speaker_") if len(below) > 2 else "unknown"
    return path_id(PurePosixPath(*below)), speaker


def _records(path: Path, root: Path, real_roots: list[Path], split: str | None) -> Iterator[ClipRecord]:
    for line_no, row in rows(path):
        try:
            label = label_id(row["target"])
        except ValueError as e:
            raise malformed(path, line_no, str(e)) from None
        if split is not None and row["set"] != split:
            continue
        method = row["method_name"]
        utt_id, speaker = identity(row["filename"], method, label)
        attack = NO_ATTACK if label == BONAFIDE else method
        extra = {"split": row["set"], "method_name": method, "category": row["category"], "source": row["source"]}
        path = locate(root, row["filename"], real_roots)
        yield ClipRecord(str(path), utt_id, label, speaker, CORPUS, attack, extra=extra)


def iter_clips(
    root: str, split: str | None = None, *, real_root: str | None = None, metadata: str | None = None
) -> Iterator[ClipRecord]:
    """Clips of ``split`` (train/val/test as the split file says; None = all).

    ``real_root``: a folder holding ``LJSpeech-1.1/`` and ``LibriSpeech/`` (or ``ljspeech/``,
    ``librispeech/``) when they are not under ``root``; ``metadata``: another path of the split file.
    """
    split = check_split(split, SPLITS, CORPUS, {"validation": "val", "dev": "val", "eval": "test"})
    root_path = require_dir(root, "the DiffSSD folder (generated_speech/ and train_val_test_splits.csv)")
    real_roots = [root_path, root_path / "real_speech"]
    if real_root:
        real_roots.insert(0, require_dir(real_root, "the folder with LJSpeech-1.1/ and LibriSpeech/"))
    path = split_file(root_path, metadata)
    return unique_ids(_records(path, root_path, real_roots, split), path)
