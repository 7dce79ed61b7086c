"""Audio decoding at the edge: any common file → mono float32 at 16 kHz.

Everything inside racl works on 16 kHz mono float32 (docs/design.md, "Conventions"); this is the one
place that turns user files and dataset cells into that, with one clear error per unreadable input.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from .labels import SAMPLING_RATE

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".aif", ".aiff", ".au", ".webm")
# torchcodec decodes with ffmpeg's libraries what libsndfile cannot; scripts/setup.sh installs them.
DEBIAN_PACKAGES = ("ffmpeg",)


class AudioDecodeError(ValueError):
    """A file that cannot be turned into usable audio; the message is meant for the user."""


def _decode_soundfile(path: str) -> tuple[np.ndarray, int]:
    data, sr = sf.read(path, dtype="float32", always_2d=True)
    return data.T, sr  # (channels, samples)


def _decode_torchcodec(path: str) -> tuple[np.ndarray, int]:
    # ffmpeg covers what libsndfile does not (m4a/aac/webm/opus in some containers).
    from torchcodec.decoders import AudioDecoder

    samples = AudioDecoder(path).get_all_samples()
    return samples.data.numpy().astype(np.float32), int(samples.sample_rate)


def to_mono_16k(data: np.ndarray | torch.Tensor, sampling_rate: int, target_rate: int = SAMPLING_RATE) -> np.ndarray:
    """(channels, samples) or (samples,) at any rate → (samples,) float32 at ``target_rate``."""
    wav = torch.as_tensor(np.asarray(data, dtype=np.float32))
    if wav.ndim == 2:
        wav = wav.mean(dim=0)
    if wav.ndim != 1:
        raise AudioDecodeError(f"expected 1-D or 2-D audio, got shape {tuple(wav.shape)}")
    if sampling_rate != target_rate:
        wav = AF.resample(wav, int(sampling_rate), target_rate)
    return wav.numpy().astype(np.float32, copy=False)


def check_waveform(wav: np.ndarray, name: str = "audio") -> np.ndarray:
    """Reject what no detector can score: no samples, or NaN/Inf values."""
    if wav.size == 0:
        raise AudioDecodeError(f"{name}: zero-length audio (no samples)")
    if not np.isfinite(wav).all():
        bad = int((~np.isfinite(wav)).sum())
        raise AudioDecodeError(f"{name}: {bad} NaN/Inf samples; the file is damaged")
    return wav


def load_audio(path: str | os.PathLike, target_rate: int = SAMPLING_RATE) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``target_rate``; raise :class:`AudioDecodeError` with a clear reason."""
    path = str(path)
    if not os.path.exists(path):
        raise AudioDecodeError(f"{path}: no such file")
    if os.path.isdir(path):
        raise AudioDecodeError(f"{path}: is a folder, not an audio file")
    if os.path.getsize(path) == 0:
        raise AudioDecodeError(f"{path}: empty file (0 bytes)")
    try:
        data, sr = _decode_soundfile(path)
    except Exception as sf_error:  # libsndfile refuses; let ffmpeg try before giving up
        try:
            data, sr = _decode_torchcodec(path)
        except Exception:
            raise AudioDecodeError(f"{path}: not a readable audio file ({str(sf_error).strip() or type(sf_error).__name__})") from None
    return check_waveform(to_mono_16k(data, sr, target_rate), path)


def decode_audio_cell(value, name: str = "audio") -> np.ndarray:
    """A dataset ``audio`` cell → mono float32 at 16 kHz, whatever form ``datasets`` hands it in.

    Undecoded cells (``Audio(decode=False)``: ``{bytes, path}``) are read with libsndfile from the
    bytes, or from the path; decoded ones are a torchcodec ``AudioDecoder`` (datasets >= 4) or
    ``{array, sampling_rate}`` (in-memory rows, older datasets).
    """
    if hasattr(value, "get_all_samples"):
        samples = value.get_all_samples()
        data, rate = samples.data.numpy(), int(samples.sample_rate)
    elif isinstance(value, dict) and value.get("array") is not None:
        data, rate = value["array"], int(value["sampling_rate"])
    elif isinstance(value, dict) and value.get("bytes"):
        try:
            data, rate = sf.read(io.BytesIO(value["bytes"]), dtype="float32", always_2d=True)
        except Exception as error:
            raise AudioDecodeError(f"{name}: audio bytes are not readable ({str(error).strip() or type(error).__name__})") from None
        data = data.T
    elif isinstance(value, dict) and value.get("path"):
        return load_audio(value["path"])
    else:
        raise AudioDecodeError(f"{name}: audio cell holds no audio (neither bytes, a path, an array nor a decoder)")
    return check_waveform(to_mono_16k(data, rate), name)


def find_audio_files(paths: list[str | os.PathLike]) -> list[str]:
    """Expand folders (recursively, audio extensions only, sorted); files are kept as given, even odd ones."""
    found: list[str] = []
    for p in map(str, paths):
        if os.path.isdir(p):
            found.extend(sorted(str(f) for f in Path(p).rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS))
        else:
            found.append(p)
    return found
