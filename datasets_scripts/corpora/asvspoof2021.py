"""ASVspoof 2021 logical access (LA) and speech deepfake (DF) evaluation sets, with the full keys.

Audio (Zenodo records 4837263 for LA, 4835108 for DF; DF comes in four tarballs that each unpack
into ``ASVspoof2021_DF_eval/flac``, possibly kept under ``ASVspoof2021_DF_eval_part0N/``)::

    <root>/ASVspoof2021_{LA,DF}_eval/flac/<UTT>.flac

Keys and meta-labels (``{LA,DF}-keys-full.tar.gz`` of asvspoof.org, which unpack to ``keys/``)::

    <root>/keys/{LA,DF}/CM/trial_metadata.txt

LA line, 8 fields: ``SPEAKER UTT CODEC TRANSMISSION ATTACK KEY TRIM SUBSET``, e.g.
``LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval``.

DF line, 13 fields: ``SPEAKER UTT CODEC SOURCE ATTACK KEY TRIM SUBSET VOCODER TASK TEAM GENDER-PAIR
LANGUAGE`` (the last four are ``-`` except for the VCC 2018/2020 sources), e.g.
``LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress traditional_vocoder - - - -`` and
``TEF2 DF_E_2000013 low_m4a vcc2020 Task1-team20 spoof notrim eval neural_vocoder_nonautoregressive
Task1 team20 FF E``. Column names follow the organisers' evaluation package (``eval-package/config.py``
of asvspoof-challenge/2021), except that DF's ``compr`` is kept as ``codec`` like LA's.

Bona fide rows carry ``bonafide`` (or ``-``) in the attack column; they get attack ``-``. SUBSET is
``progress``, ``eval`` or ``hidden``; ``split`` filters on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..schema import NO_ATTACK, ClipRecord, label_id
from . import check_split, first_existing, malformed, protocol_rows, require_dir, require_file

KEYS = ("bonafide", "spoof")
SPLITS = ("progress", "eval", "hidden")
LA_COLUMNS = ("codec", "transmission")  # the package's "trans"
DF_COLUMNS = ("codec", "source")
VCC_COLUMNS = ("task", "team", "gender_pair", "language")


def keys_path(root: Path, track: str, keys: str | None) -> Path:
    """``keys`` if given, else ``keys/<track>/CM/trial_metadata.txt`` under ``root`` (or ``<track>-keys-full/``)."""
    if keys:
        return require_file(keys, f"the ASVspoof 2021 {track} CM trial_metadata.txt")
    relative = Path("keys") / track / "CM" / "trial_metadata.txt"
    candidates = [root / relative, root / f"{track}-keys-full" / relative]
    what = f"the ASVspoof 2021 {track} keys ({track}-keys-full.tar.gz of asvspoof.org)"
    return first_existing(candidates) or require_file(candidates[0], what)


def audio_locator(root: Path, track: str):
    """``utt → path``: ``ASVspoof2021_<track>_eval/flac``, or the ``_partNN`` folders when unpacked separately."""
    main = root / f"ASVspoof2021_{track}_eval" / "flac"
    parts = sorted(root.glob(f"ASVspoof2021_{track}_eval_part*/ASVspoof2021_{track}_eval/flac"))
    if not parts:
        return lambda utt: str(main / f"{utt}.flac")
    index = {f.stem: str(f) for d in [main, *parts] if d.is_dir() for f in d.iterdir()}
    return lambda utt: index.get(utt, str(main / f"{utt}.flac"))


def parse_line(fields: list[str], track: str, path: Path, line_no: int) -> tuple[str, str, str, int, dict]:
    """(speaker, utt, attack, label, extra) of one key row."""
    speaker, utt, codec, third, attack, key, trim, subset = fields[:8]
    if key not in KEYS:
        raise malformed(path, line_no, f"key {key!r} is neither bonafide nor spoof")
    if key == "spoof" and attack in (NO_ATTACK, "bonafide"):
        raise malformed(path, line_no, "spoof row without an attack id")
    names = LA_COLUMNS if track == "LA" else DF_COLUMNS
    extra = {names[0]: codec, names[1]: third, "trim": trim, "subset": subset}
    if track == "DF":
        extra["vocoder"] = fields[8]
        extra.update(zip(VCC_COLUMNS, fields[9:13] + [NO_ATTACK] * (13 - len(fields))))
    return speaker, utt, attack if key == "spoof" else NO_ATTACK, label_id(key), extra


def _records(keys: Path, track: str, locate, split: str | None) -> Iterator[ClipRecord]:
    corpus = f"asvspoof2021_{track.lower()}"
    min_fields, max_fields = (8, 8) if track == "LA" else (9, 13)
    for line_no, fields in protocol_rows(keys, min_fields, max_fields):
        speaker, utt, attack, label, extra = parse_line(fields, track, keys, line_no)
        if split is None or extra["subset"] == split:
            yield ClipRecord(locate(utt), utt, label, speaker, corpus, attack, extra=extra)


def iter_clips(
    root: str, split: str | None = None, *, track: str = "LA", keys: str | None = None
) -> Iterator[ClipRecord]:
    """Trials of ``track`` (LA or DF); ``split`` filters on SUBSET (progress/eval/hidden; None = all).

    ``keys`` overrides the path of ``trial_metadata.txt``.
    """
    track = track.upper()
    if track not in ("LA", "DF"):
        raise ValueError(f"unknown ASVspoof 2021 track {track!r}; expected LA or DF")
    split = check_split(split, SPLITS, f"asvspoof2021_{track.lower()}")
    root_path = require_dir(root, f"the ASVspoof 2021 {track} folder (with ASVspoof2021_{track}_eval/ and keys/)")
    key_file = keys_path(root_path, track, keys)
    return _records(key_file, track, audio_locator(root_path, track), split)


def iter_la_clips(root: str, split: str | None = None, *, keys: str | None = None) -> Iterator[ClipRecord]:
    return iter_clips(root, split, track="LA", keys=keys)


def iter_df_clips(root: str, split: str | None = None, *, keys: str | None = None) -> Iterator[ClipRecord]:
    return iter_clips(root, split, track="DF", keys=keys)
