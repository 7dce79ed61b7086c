"""Corpus readers: one module per corpus, one registry.

Every reader is ``iter_clips(root, split=None, **options) -> Iterator[ClipRecord]``. It checks the
layout eagerly (a missing folder or protocol raises :class:`FileNotFoundError` naming the path and
what was expected, before any work starts) and then yields one :class:`ClipRecord` per protocol row,
lazily. Audio files are not opened here: ``path`` is absolute whether or not the file exists, and
the build reports the ones it cannot decode. A malformed protocol row raises :class:`ValueError`
naming the file and the line number.

IDs keep the corpus's own names; where a corpus has none (folders of files) the ID is derived from
the relative path with ``-`` for the separators, so that no ``utt_id`` contains a path separator.

The registry maps a name to ``"module"`` (its ``iter_clips``) or ``"module:function"`` where one
module reads several corpora (ASVspoof 2021 LA and DF share one key format).
"""

from __future__ import annotations

import csv
import importlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ..schema import ClipRecord

CORPORA: dict[str, str] = {
    "asvspoof2019_la": "asvspoof2019",
    "asvspoof2021_la": "asvspoof2021:iter_la_clips",
    "asvspoof2021_df": "asvspoof2021:iter_df_clips",
    "in_the_wild": "in_the_wild",
    "codecfake": "codecfake",
    "wavefake": "wavefake",
    "diffssd": "diffssd",
    "folder": "folder",
    "demo": "fillets",
    "ktuberling": "ktuberling",
}

Reader = Callable[..., Iterator[ClipRecord]]


def get_reader(name: str) -> Reader:
    """The reader of corpus ``name``, imported on first use (heavy imports stay out of ``--help``)."""
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}; known corpora: {', '.join(sorted(CORPORA))}")
    module_name, _, function = CORPORA[name].partition(":")
    module = importlib.import_module(f".{module_name}", __name__)
    return getattr(module, function or "iter_clips")


def iter_corpus(name: str, root: str | None, split: str | None = None, **options) -> Iterator[ClipRecord]:
    """``get_reader(name)(root, split, **options)``."""
    return get_reader(name)(root, split, **options)


# Shared helpers of the reader modules.


def require_dir(path: str | os.PathLike, what: str) -> Path:
    path = Path(path).expanduser().absolute()
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such folder; expected {what}")
    return path


def require_file(path: str | os.PathLike, what: str) -> Path:
    path = Path(path).expanduser().absolute()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; expected {what}")
    return path


def first_existing(candidates: Iterable[Path]) -> Path | None:
    return next((c for c in candidates if c.exists()), None)


def check_split(split: str | None, splits: tuple[str, ...], corpus: str, aliases: dict | None = None) -> str | None:
    """Validate ``split`` against the corpus's own split names; ``None`` means every split."""
    if split is None:
        return None
    split = (aliases or {}).get(split, split)
    if split not in splits:
        raise ValueError(f"{corpus}: unknown split {split!r}; this corpus has {', '.join(splits)} (or None for all)")
    return split


def malformed(path: str | os.PathLike, line_no: int, problem: str) -> ValueError:
    return ValueError(f"{path}, line {line_no}: {problem}")


def protocol_rows(path: Path, min_fields: int, max_fields: int | None = None) -> Iterator[tuple[int, list[str]]]:
    """Whitespace-separated protocol rows as ``(line number, fields)``; blank lines are skipped."""
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < min_fields or (max_fields is not None and len(fields) > max_fields):
                expected = min_fields if max_fields == min_fields else f"at least {min_fields}"
                problem = f"expected {expected} space-separated fields, got {len(fields)}: {line.strip()!r}"
                raise malformed(path, line_no, problem)
            yield line_no, fields


def table_rows(path: Path, required: dict[str, tuple[str, ...]]) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a CSV (with header) or JSON Lines file as ``(line number, {column: text})``.

    ``required`` maps each canonical column to its accepted spellings; the first spelling present
    is renamed to the canonical name. A missing column or an empty required cell is a
    :class:`ValueError` naming the file (and the line).
    """
    rows = _jsonl_rows(path) if path.suffix == ".jsonl" else _csv_rows(path)
    mapping: dict[str, str] | None = None
    for line_no, row in rows:
        if mapping is None:
            mapping = _column_mapping(path, row.keys(), required)
        out = {k: ("" if v is None else str(v)).strip() for k, v in row.items() if k is not None}
        for canonical, column in mapping.items():
            out[canonical] = out.pop(column)
            if not out[canonical]:
                raise malformed(path, line_no, f"empty {canonical!r} ({column!r})")
        yield line_no, out


def _csv_rows(path: Path) -> Iterator[tuple[int, dict]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        for row in reader:
            if None in row:  # DictReader files cells beyond the header under None
                raise malformed(path, reader.line_num, f"more fields than the header's {len(reader.fieldnames)}")
            if any((v or "").strip() for v in row.values()):
                yield reader.line_num, row


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict]]:
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise malformed(path, line_no, f"not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise malformed(path, line_no, "expected a JSON object")
            yield line_no, row


def _column_mapping(path: Path, columns: Iterable[str], required: dict[str, tuple[str, ...]]) -> dict[str, str]:
    columns = [c for c in columns if c is not None]
    mapping = {}
    for canonical, spellings in required.items():
        found = next((s for s in spellings if s in columns), None)
        if found is None:
            accepted = ", ".join(spellings)
            raise ValueError(f"{path}: no {canonical!r} column (accepted: {accepted}); columns are {columns}")
        mapping[canonical] = found
    return mapping


def path_id(relative: str | os.PathLike) -> str:
    """ID of a file known only by its relative path: extension dropped, separators → ``-``."""
    rel = Path(relative)
    return "-".join(rel.with_suffix("").parts)


def unique_ids(records: Iterable[ClipRecord], source: str | os.PathLike) -> Iterator[ClipRecord]:
    """Pass records through, raising :class:`ValueError` on a repeated ``utt_id``."""
    seen: set[str] = set()
    for record in records:
        if record.utt_id in seen:
            raise ValueError(f"{source}: utt_id {record.utt_id!r} occurs twice (second: {record.path})")
        seen.add(record.utt_id)
        yield record


def spread(items: list, limit: int | None) -> list:
    """At most ``limit`` items, evenly spread over the list (every part of a sorted corpus appears)."""
    if limit is None or limit >= len(items):
        return list(items)
    step = len(items) / max(limit, 1)
    return [items[int(i * step)] for i in range(limit)]


def pick(row: dict[str, str], names: tuple[str, ...], default: str) -> str:
    """The first non-empty cell among ``names`` (optional columns with several spellings)."""
    return next((row[n] for n in names if row.get(n)), default)
