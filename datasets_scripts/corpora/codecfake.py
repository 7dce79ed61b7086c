"""CodecFake (Wu et al., Interspeech 2024, arXiv 2406.07237): VCTK resynthesised by neural codecs.

The corpus is published as the Hub dataset ``rogertseng/CodecFake`` (Parquet, one ``train`` split)
with the columns ``audio``, ``label`` (``genuine`` / ``spoofing``), ``speaker_id`` (VCTK speaker,
e.g. ``p225``) and ``codec_name`` (``genuine`` for the originals, else e.g. ``encodec_24khz``,
``SpeechTokenizer``, ``descript-audio-codec-16khz``), plus ``datalist.csv`` listing the same four
fields per clip (``wavpath, label, spkID, CodecName`` in the authors' training code). The wav files
are also published per codec as ``rogertseng/CodecFake_wavs`` zips.

What this reader reads: a local export of those columns, with the audio as files. We assume, and
could not check against a downloaded copy, the following:

* the metadata is ``<root>/metadata.csv`` or ``<root>/metadata.jsonl`` (an export with header), or
  else the Hub's ``<root>/datalist.csv`` (header optional: without one, its four columns are taken
  in the order above);
* the path column is one of ``file``, ``file_name``, ``path``, ``wavpath``, ``audio`` and is relative
  to ``root`` (absolute paths are kept); the label column accepts ``genuine``/``spoofing`` as well as
  ``bonafide``/``spoof``; the speaker column is ``speaker_id``/``speaker``/``spkID``; the codec
  column is ``codec_name``/``codec``/``CodecName``/``attack``.

IDs: an original keeps its file stem (``p225_001``); a codec clip is ``<codec>-<stem>``, and its
``source_id`` is the original with the same stem (or the stem minus a ``_<codec>`` suffix) when
the metadata has it: every codec clip is a resynthesis of one VCTK recording.

Splits follow the authors' code (speaker-disjoint): dev = p226, p229; eval = p227, p228; train =
every other speaker.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from ..schema import BONAFIDE, NO_ATTACK, ClipRecord, label_id
from . import check_split, first_existing, malformed, pick, require_dir, require_file, table_rows, unique_ids

CORPUS = "codecfake"
SPLITS = ("train", "dev", "eval")
DEV_SPEAKERS = ("p226", "p229")
EVAL_SPEAKERS = ("p227", "p228")
GENUINE = "genuine"
METADATA_FILES = ("metadata.csv", "metadata.jsonl", "datalist.csv")
PATH_COLUMNS = ("file", "file_name", "path", "wavpath", "audio")
SPEAKER_COLUMNS = ("speaker_id", "speaker", "spkID", "spk_id")
CODEC_COLUMNS = ("codec_name", "codec", "CodecName", "attack")
DATALIST_FIELDS = ("file", "label", "speaker_id", "codec_name")  # datalist.csv order, canonical names


def speaker_split(speaker: str) -> str:
    return "dev" if speaker in DEV_SPEAKERS else "eval" if speaker in EVAL_SPEAKERS else "train"


def metadata_path(root: str) -> Path:
    root_path = require_dir(root, "the CodecFake folder (audio files and metadata.csv / datalist.csv)")
    found = first_existing(root_path / name for name in METADATA_FILES)
    return found or require_file(root_path / METADATA_FILES[0], f"CodecFake metadata: one of {', '.join(METADATA_FILES)}")


def _has_header(path: Path) -> bool:
    with open(path, encoding="utf-8-sig", newline="") as f:
        first = next(csv.reader(f), [])
    return any(cell.strip() in PATH_COLUMNS + ("label",) for cell in first)


def _headerless_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        for line_no, cells in enumerate(csv.reader(f), 1):
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(DATALIST_FIELDS):
                raise malformed(path, line_no, f"expected 4 fields (wavpath, label, speaker, codec), got {len(cells)}")
            yield line_no, {k: v.strip() for k, v in zip(DATALIST_FIELDS, cells)}


def rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, {file, label, speaker, codec})`` of every metadata row."""
    if path.suffix == ".csv" and not _has_header(path):
        source = _headerless_rows(path)
    else:
        source = table_rows(path, {"file": PATH_COLUMNS, "label": ("label",)})
    for line_no, row in source:
        speaker, codec = pick(row, SPEAKER_COLUMNS, "unknown"), pick(row, CODEC_COLUMNS, "")
        yield line_no, {"file": row["file"], "label": row["label"], "speaker": speaker, "codec": codec}


def parse_label(text: str, path: Path, line_no: int) -> int:
    try:
        return label_id("spoof" if text.strip().lower() == "spoofing" else text)
    except ValueError as e:
        raise malformed(path, line_no, str(e)) from None


def _stem_candidates(stem: str, codec: str) -> list[str]:
    suffix = f"_{codec}"
    return [stem, stem[: -len(suffix)]] if codec and stem.endswith(suffix) else [stem]


def _genuine_stems(path: Path) -> set[str]:
    return {Path(r["file"]).stem for line_no, r in rows(path) if parse_label(r["label"], path, line_no) == BONAFIDE}


def _records(path: Path, split: str | None) -> Iterator[ClipRecord]:
    genuine = _genuine_stems(path)  # first pass: which originals exist, for source_id pairing
    for line_no, row in rows(path):
        label = parse_label(row["label"], path, line_no)
        codec, stem = row["codec"], Path(row["file"]).stem
        if label != BONAFIDE and codec in ("", GENUINE, NO_ATTACK):
            raise malformed(path, line_no, "spoofing row without a codec name")
        clip_split = speaker_split(row["speaker"])
        if split is not None and clip_split != split:
            continue
        audio = Path(row["file"]) if Path(row["file"]).is_absolute() else path.parent / row["file"]
        if label == BONAFIDE:
            extra = {"split": clip_split, "codec": GENUINE}
            yield ClipRecord(str(audio), stem, label, row["speaker"], CORPUS, NO_ATTACK, extra=extra)
            continue
        utt_id = f"{codec}-{stem}"
        source = next((s for s in _stem_candidates(stem, codec) if s in genuine), utt_id)
        extra = {"split": clip_split, "codec": codec}
        yield ClipRecord(str(audio), utt_id, label, row["speaker"], CORPUS, codec, source, extra=extra)


def iter_clips(root: str, split: str | None = None) -> Iterator[ClipRecord]:
    """Clips of ``split`` (train/dev/eval by speaker, as in the authors' code; None = all)."""
    split = check_split(split, SPLITS, CORPUS)
    path = metadata_path(root)
    return unique_ids(_records(path, split), path)
