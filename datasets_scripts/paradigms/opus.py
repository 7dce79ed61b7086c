"""Opus round trip at a low bit rate (libopus through ffmpeg, Ogg in between), 16 kHz in and out.

At 6-12 kbit/s Opus runs its SILK layer (linear prediction, long-term pitch prediction, noise
shaping) at narrow to wide band: speech keeps its words and voice, but its fine spectral structure
is re-quantised and the band above a few kHz is cut or filled. That is what voice over IP and
messaging apps do to a genuine voice, so a detector must not take codec traces for spoofing; as
a reconstruction it is a hard sample. No weights; libopus is deterministic for a fixed build.

Alignment: the Ogg stream records the encoder's pre-skip and the exact end (granule position),
and ffmpeg drops both on decoding, so the output starts and ends with the input.
"""

from __future__ import annotations

import numpy as np

from . import ffmpeg
from .base import Reconstructor

REQUIREMENTS: dict[str, str] = {}
DEBIAN_PACKAGES = ffmpeg.DEBIAN_PACKAGES
BITRATE_RANGE_KBPS = (6.0, 12.0)  # the low-rate range this paradigm is for (libopus goes to 510)
APPLICATIONS = ("voip", "audio", "lowdelay")


def unavailable() -> str | None:
    """Why the paradigm cannot run here (for :func:`~datasets_scripts.paradigms.paradigm_status`)."""
    return ffmpeg.unavailable("libopus")


class OpusReconstructor(Reconstructor):
    """Encode at 16 kHz with libopus, decode with libopus at 16 kHz.

    Args:
        bitrate_kbps: target bit rate in kbit/s, within :data:`BITRATE_RANGE_KBPS` (VBR).
        application: libopus's tuning, one of :data:`APPLICATIONS` (``"voip"``: speech).
        frame_ms: Opus frame duration (2.5, 5, 10, 20, 40 or 60 ms).
    """

    name = "opus"

    def __init__(self, bitrate_kbps: float = 8.0, application: str = "voip", frame_ms: float = 20.0,
                 device: str = "cpu", **kwargs):
        super().__init__(**kwargs)
        low, high = BITRATE_RANGE_KBPS
        if not low <= float(bitrate_kbps) <= high:
            raise ValueError(f"opus: bitrate_kbps {bitrate_kbps!r} is not supported; "
                             f"choose {low:g} to {high:g} kbit/s")
        if application not in APPLICATIONS:
            raise ValueError(f"opus: application {application!r} is not supported; choose one of {', '.join(APPLICATIONS)}")
        if float(frame_ms) not in (2.5, 5.0, 10.0, 20.0, 40.0, 60.0):
            raise ValueError(f"opus: frame_ms {frame_ms!r} is not supported; choose 2.5, 5, 10, 20, 40 or 60")
        ffmpeg.require("libopus")
        self.bitrate_kbps, self.application, self.frame_ms = float(bitrate_kbps), application, float(frame_ms)
        self.length_tolerance = 0  # pre-skip and end trimming give back exactly the input's samples
        self.to(device)  # recorded only: the codec runs in ffmpeg on the CPU

    def _one(self, wave: np.ndarray) -> np.ndarray:
        peak = float(np.max(np.abs(wave)))
        x = wave * (0.99 / peak) if peak > 0.99 else wave  # no clipping at 16 bits (level is restored)
        pcm = ["-f", "s16le", "-ar", str(self.sampling_rate), "-ac", "1"]
        options = ["-c:a", "libopus", "-b:a", f"{round(self.bitrate_kbps * 1000)}", "-application", self.application,
                   "-frame_duration", f"{self.frame_ms:g}"]
        stream = ffmpeg.run([*pcm, "-i", "-", *options, "-f", "ogg", "-fflags", "+bitexact", "-"], ffmpeg.to_s16(x))
        return ffmpeg.from_s16(ffmpeg.run(["-c:a", "libopus", "-f", "ogg", "-i", "-", *pcm, "-"], stream))

    def _reconstruct_batch(self, waves, seeds):
        # Opus has no randomness to seed.
        return [self._one(w) for w in waves]


RECONSTRUCTOR = OpusReconstructor
