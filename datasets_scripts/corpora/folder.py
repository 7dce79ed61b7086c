"""A corpus of your own: a folder of bona fide and spoofed audio, or a CSV list.

Folder layout (audio files at any depth, those with an extension in ``racl.audio.AUDIO_EXTENSIONS``)::

    <root>/bonafide/**            label 0, attack "-"
    <root>/spoof/<system>/**      label 1, attack <system> (the first folder below spoof/)
    <root>/spoof/*.wav            label 1, attack "unknown"

With ``split``, the layout is read from ``<root>/<split>/`` (e.g. ``root/train/bonafide/...``).
Speakers are ``unknown``; IDs are the path below ``root`` with ``-`` for the separators.

CSV form: ``root`` is a ``.csv`` file, or a folder with ``metadata.csv``. Columns ``path,label``
and optionally ``speaker``, ``attack``, ``utt_id``, ``split`` (any other columns go to ``extra``);
paths are relative to the CSV's folder (absolute ones are kept); labels ``bonafide``/``spoof``,
``0``/``1`` or the spellings :func:`datasets_scripts.schema.label_id` accepts. ``split`` selects
rows by the ``split`` column.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from racl.audio import find_audio_files

from ..schema import BONAFIDE, NO_ATTACK, SPOOF, ClipRecord, label_id
from . import malformed, path_id, require_dir, require_file, table_rows, unique_ids

CORPUS = "folder"
METADATA = "metadata.csv"
CLASS_DIRS = {"bonafide": BONAFIDE, "spoof": SPOOF}
UNKNOWN = "unknown"
CSV_COLUMNS = {"path": ("path", "file", "filename"), "label": ("label",)}


def _folder_records(root: Path, corpus: str) -> Iterator[ClipRecord]:
    for class_dir, label in CLASS_DIRS.items():
        base = root / class_dir
        if not base.is_dir():
            continue
        for file in map(Path, find_audio_files([base])):
            rel = file.relative_to(root)
            below = rel.parts[1:]
            attack = NO_ATTACK if label == BONAFIDE else below[0] if len(below) > 1 else UNKNOWN
            yield ClipRecord(str(file), path_id(rel), label, UNKNOWN, corpus, attack)


def _csv_records(csv_path: Path, split: str | None, corpus: str) -> Iterator[ClipRecord]:
    base = csv_path.parent
    for line_no, row in table_rows(csv_path, CSV_COLUMNS):
        if split is not None:
            if "split" not in row:
                raise ValueError(f"{csv_path}: split={split!r} asked for, but the CSV has no 'split' column")
            if row["split"] != split:
                continue
        try:
            label = label_id(row.pop("label"))
        except ValueError as e:
            raise malformed(csv_path, line_no, str(e)) from None
        rel = row.pop("path")
        path = Path(rel) if Path(rel).is_absolute() else base / rel
        utt_id = row.pop("utt_id", "") or path_id(Path(rel).relative_to(Path(rel).anchor))
        speaker, attack = row.pop("speaker", "") or UNKNOWN, row.pop("attack", "")
        attack = NO_ATTACK if label == BONAFIDE else attack if attack not in ("", NO_ATTACK) else UNKNOWN
        yield ClipRecord(str(path), utt_id, label, speaker, corpus, attack, extra=row)


def _folder_root(root_path: Path, split: str | None) -> Path:
    folder = root_path
    if split:
        folder = require_dir(root_path / split, f"the {split!r} split folder (with bonafide/ and/or spoof/)")
    if not any((folder / d).is_dir() for d in CLASS_DIRS):
        raise FileNotFoundError(
            f"{folder}: no bonafide/ or spoof/ folder and no {METADATA}; expected <root>/bonafide/**, "
            "<root>/spoof/<system>/** or a CSV with columns path,label"
        )
    return folder


def iter_clips(root: str, split: str | None = None, *, corpus: str = CORPUS) -> Iterator[ClipRecord]:
    """Clips of a bonafide/ + spoof/ folder or of a CSV list; ``corpus`` names the corpus in the records."""
    root_path = Path(root).expanduser().absolute()
    if root_path.suffix.lower() == ".csv":
        csv_path = require_file(root_path, "a CSV list with columns path,label[,speaker,attack,utt_id,split]")
        return unique_ids(_csv_records(csv_path, split, corpus), csv_path)
    root_path = require_dir(root_path, "a folder with bonafide/ and spoof/ (or metadata.csv), or a .csv file")
    if (root_path / METADATA).is_file():
        return unique_ids(_csv_records(root_path / METADATA, split, corpus), root_path / METADATA)
    folder = _folder_root(root_path, split)
    return unique_ids(_folder_records(folder, corpus), folder)
