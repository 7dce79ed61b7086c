"""WaveFake (Frank & Schönherr, NeurIPS 2021 datasets track): LJSpeech and JSUT through neural vocoders.

The Zenodo release (record 5642694) is one ``generated_audio/`` folder with a folder per vocoder,
each holding copies of the real clips with ``_gen`` appended to the stem::

    generated_audio/ljspeech_melgan/LJ001-0001_gen.wav
    generated_audio/ljspeech_{parallel_wavegan,multi_band_melgan,full_band_melgan,melgan_large,
                              waveglow,hifiGAN}/...
    generated_audio/jsut_{multi_band_melgan,parallel_wavegan}/BASIC5000_0001_gen.wav
    generated_audio/common_voices_prompts_from_conformer_fastspeech2_pwg_ljspeech/...  (full TTS)

The bona fide clips are the original corpora, downloaded separately::

    LJSpeech-1.1/wavs/LJ001-0001.wav
    jsut_ver1.1/basic5000/wav/BASIC5000_0001.wav

This reader takes a ``root`` holding the vocoder folders directly or under ``generated_audio/``,
and the real corpora directly or under ``real_audio/`` (either may be absent, not both). Every
folder with audio files directly inside, other than those containers, is one attack named after the
folder. A vocoded clip's ``source_id`` is the bona fide clip of the same stem (``_gen`` dropped)
when that clip is present: the vocoders resynthesise the real recordings, which makes these natural
original/reconstruction pairs. Speakers: ``LJ`` and ``JSUT`` (``jsut_*`` folders are JSUT, all others
LJSpeech voices). No official splits: an evaluation set (split ``eval``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from racl.audio import AUDIO_EXTENSIONS

from ..schema import BONAFIDE, SPOOF, ClipRecord
from . import check_split, require_dir, unique_ids

CORPUS = "wavefake"
BONAFIDE_DIRS = {"LJ": Path("LJSpeech-1.1/wavs"), "JSUT": Path("jsut_ver1.1/basic5000/wav")}
CONTAINERS = {"generated_audio", "real_audio", "LJSpeech-1.1", "jsut_ver1.1"}
GENERATED_SUFFIX = "_gen"


def audio_files(folder: Path) -> list[Path]:
    with os.scandir(folder) as entries:
        return sorted(Path(e.path) for e in entries if e.is_file() and Path(e.name).suffix.lower() in AUDIO_EXTENSIONS)


def bonafide_dirs(root: Path) -> dict[str, Path]:
    found = {}
    for speaker, relative in BONAFIDE_DIRS.items():
        for base in (root, root / "real_audio"):
            if (base / relative).is_dir():
                found[speaker] = base / relative
                break
    return found


def vocoder_dirs(root: Path) -> list[Path]:
    bases = [b for b in (root, root / "generated_audio") if b.is_dir()]
    candidates = sorted(d for b in bases for d in b.iterdir() if d.is_dir() and d.name not in CONTAINERS)
    return [d for d in candidates if audio_files(d)]


def speaker_of(vocoder: str) -> str:
    return "JSUT" if vocoder.lower().startswith("jsut") else "LJ"


def source_stem(stem: str) -> str:
    return stem[: -len(GENERATED_SUFFIX)] if stem.endswith(GENERATED_SUFFIX) else stem


def _records(real: dict[str, Path], vocoded: list[Path]) -> Iterator[ClipRecord]:
    real_files = {speaker: audio_files(folder) for speaker, folder in real.items()}
    real_ids = {f.stem for files in real_files.values() for f in files}
    for speaker, files in real_files.items():
        for f in files:
            yield ClipRecord(str(f), f.stem, BONAFIDE, speaker, CORPUS)
    for folder in vocoded:
        for f in audio_files(folder):
            utt_id, source = f"{folder.name}-{f.stem}", source_stem(f.stem)
            source_id = source if source in real_ids else utt_id
            yield ClipRecord(str(f), utt_id, SPOOF, speaker_of(folder.name), CORPUS, folder.name, source_id)


def iter_clips(root: str, split: str | None = None) -> Iterator[ClipRecord]:
    """Bona fide clips (LJ, then JSUT), then every vocoder folder in name order."""
    check_split(split, ("eval",), CORPUS, {"test": "eval"})
    root_path = require_dir(root, "the WaveFake folder (generated_audio/ and/or LJSpeech-1.1/, jsut_ver1.1/)")
    real, vocoded = bonafide_dirs(root_path), vocoder_dirs(root_path)
    if not real and not vocoded:
        raise FileNotFoundError(
            f"{root_path}: no WaveFake audio; expected vocoder folders (e.g. ljspeech_melgan/) directly or under "
            "generated_audio/, and/or LJSpeech-1.1/wavs, jsut_ver1.1/basic5000/wav directly or under real_audio/"
        )
    return unique_ids(_records(real, vocoded), root_path)
