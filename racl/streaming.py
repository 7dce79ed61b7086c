"""Long files decoded piece by piece: mono float32 at 16 kHz, as ``racl.audio.load_audio`` gives the whole.

Only formats libsndfile reads (WAV, FLAC, OGG, MP3, AIFF, ...) are streamed; others are decoded whole by
``racl.audio``. A file at another rate is resampled block by block with ``resample_overlap`` input
samples of the neighbouring blocks on each side, so the sinc filter sees what it sees in the whole
file and block boundaries leave no trace (blocks start on whole periods of the rate ratio).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from .audio import AudioDecodeError, check_waveform
from .labels import SAMPLING_RATE


def streamable_seconds(path: str) -> float | None:
    """The duration of a file libsndfile can read in blocks (None when it cannot, or the header does not say)."""
    try:
        info = sf.info(str(path))
    except Exception:
        return None
    return info.frames / info.samplerate if info.samplerate and info.frames > 0 else None


def stream_audio(path: str, block_seconds: float = 32.0, resample_overlap: int = 2048) -> Iterator[np.ndarray]:
    """Pieces of ``path`` as mono float32 at 16 kHz, each about ``block_seconds`` long."""
    path = str(path)
    try:
        f = sf.SoundFile(path)
    except Exception as error:
        raise AudioDecodeError(f"{path}: not a readable audio file ({str(error).strip() or type(error).__name__})") from None
    with f:
        rate, frames = f.samplerate, f.frames
        period = rate // math.gcd(rate, SAMPLING_RATE)  # input samples per whole period of the ratio
        block = max(1, int(block_seconds * rate) // period) * period
        overlap = 0 if rate == SAMPLING_RATE else -(-resample_overlap // period) * period
        for start in range(0, frames, block):
            left = max(0, start - overlap)
            f.seek(left)
            data = f.read(min(frames, start + block + overlap) - left, dtype="float32", always_2d=True)
            mono = check_waveform(data.mean(axis=1).astype(np.float32, copy=False), path)
            if rate == SAMPLING_RATE:
                yield mono
                continue
            out = AF.resample(torch.from_numpy(mono), rate, SAMPLING_RATE).numpy()
            skip = (start - left) * SAMPLING_RATE // rate
            # this block's outputs: up to the next block's first (or the whole file's last) output sample
            stop = min(start + block, frames)
            count = -(-stop * SAMPLING_RATE // rate) - (-(-start * SAMPLING_RATE // rate))
            yield out[skip : skip + count]
