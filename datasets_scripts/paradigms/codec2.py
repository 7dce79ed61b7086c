"""Codec2 round trip (libcodec2 through ffmpeg): 16 kHz → 8 kHz → Codec2 at ``bitrate`` → 16 kHz.

Codec2 is a parametric low-bit-rate speech codec (sinusoidal model: pitch, voicing, a quantised
spectral envelope per 10-40 ms frame), so its output is *resynthesised* speech, not a coded
waveform: harmonic phases are rebuilt, the envelope is smoothed and everything above 4 kHz is gone.
That is the artefact profile of a simple vocoder spoof on telephone-band audio, made by a deployed
codec rather than a TTS system, which is why it is a hard sample. No weights; deterministic.
"""

from __future__ import annotations

import numpy as np
import torch

from . import ffmpeg
from .audio import resample
from .base import Reconstructor

REQUIREMENTS: dict[str, str] = {}
DEBIAN_PACKAGES = ffmpeg.DEBIAN_PACKAGES
CODEC_RATE = 8_000
# Modes of the linked libcodec2 (1.0 dropped 700 and 700B) → (frame length, codec delay), samples at 8 kHz.
# The delay was measured as the lag of the amplitude envelope on amplitude-modulated harmonic signals.
MODES = {"3200": (160, 160), "2400": (160, 160), "1600": (320, 160), "1400": (320, 160),
         "1300": (320, 160), "1200": (320, 160), "700C": (320, 240)}


def unavailable() -> str | None:
    """Why the paradigm cannot run here (for :func:`~datasets_scripts.paradigms.paradigm_status`)."""
    return ffmpeg.unavailable("libcodec2")


class Codec2Reconstructor(Reconstructor):
    """Encode and decode with Codec2; the codec delay is removed, so the output is time-aligned.

    Args:
        bitrate: the Codec2 mode, one of :data:`MODES` (an int is taken as its name: 1600 → "1600").
    """

    name = "codec2"

    def __init__(self, bitrate: str | int = "1600", device: str = "cpu", **kwargs):
        super().__init__(**kwargs)
        mode = str(bitrate).upper()
        if mode not in MODES:
            raise ValueError(f"codec2: bitrate {bitrate!r} is not supported; choose one of {', '.join(MODES)}")
        ffmpeg.require("libcodec2")
        self.bitrate = mode
        self.frame, self.delay = MODES[mode]
        # The input is extended by the delay and a frame so that the decoder synthesises all of it,
        # and exactly the input's span is kept: only the 8 kHz rounding remains.
        self.length_tolerance = 2
        self.to(device)  # recorded only: the codec runs in ffmpeg on the CPU

    def _one(self, wave: np.ndarray) -> np.ndarray:
        peak = float(np.max(np.abs(wave)))
        x = wave * (0.99 / peak) if peak > 0.99 else wave  # no clipping at 16 bits (level is restored)
        narrow = resample(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), self.sampling_rate, CODEC_RATE)
        span = len(narrow)
        narrow = np.pad(narrow.numpy(), (0, self.delay + self.frame))
        pcm = ["-f", "s16le", "-ar", str(CODEC_RATE), "-ac", "1"]
        stream = ffmpeg.run([*pcm, "-i", "-", "-c:a", "libcodec2", "-mode", self.bitrate, "-f", "codec2", "-"],
                            ffmpeg.to_s16(narrow))
        decoded = ffmpeg.from_s16(ffmpeg.run(["-f", "codec2", "-i", "-", *pcm, "-"], stream))
        aligned = decoded[self.delay : self.delay + span].copy()
        return resample(torch.from_numpy(aligned), CODEC_RATE, self.sampling_rate).numpy()

    def _reconstruct_batch(self, waves, seeds):
        # Codec2 has no randomness to seed.
        return [self._one(w) for w in waves]


RECONSTRUCTOR = Codec2Reconstructor
