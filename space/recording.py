"""One upload, read within the Space's limits and scored a few batches of windows at a time.

Every refusal is an :class:`InputRejected` whose message is shown in the page as it is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from racl import SAMPLING_RATE
from racl.audio import AudioDecodeError, load_audio
from racl.scoring import ClipScore, Scorer, window_spans
from verdict import format_limit, format_time

MIN_SECONDS = 0.1  # under 400 samples (25 ms) the backbone's convolutions fail; 0.1 s leaves a margin


class InputRejected(Exception):
    """A recording the app will not score; the message is shown in the page as it is."""


def probe_seconds(path: str) -> float | None:
    """Duration from the header, without decoding (None when the header does not say)."""
    try:
        info = sf.info(path)
        return info.frames / info.samplerate if info.samplerate else None
    except Exception:  # not a libsndfile format: ask ffmpeg, and if it cannot tell, decoding will
        pass
    try:
        from torchcodec.decoders import AudioDecoder

        meta = AudioDecoder(path).metadata
        return meta.duration_seconds_from_header or meta.duration_seconds
    except Exception:
        return None


def _too_long(name: str, seconds: float, limit: float) -> InputRejected:
    return InputRejected(
        f"**This recording is too long for this demo:** `{name}` lasts {format_time(seconds)}, "
        f"and at most {format_limit(limit)} are analysed here. Trim it, or score it offline with `racl-score`."
    )


def read_recording(path: str, max_seconds: float) -> np.ndarray:
    """16 kHz mono float32 of ``path``, or :class:`InputRejected` saying why not in plain words."""
    name = Path(path).name
    seconds = probe_seconds(path)
    if seconds is not None and seconds > max_seconds:  # refuse before decoding a huge file into memory
        raise _too_long(name, seconds, max_seconds)
    try:
        wave = load_audio(path)
    except AudioDecodeError as error:
        reason = str(error).replace(path, name)  # the server's temp path means nothing to the user
        raise InputRejected(f"**Could not read this file:** {reason}. Please upload a playable audio file (WAV, FLAC, MP3, OGG, M4A, ...).") from None
    seconds = len(wave) / SAMPLING_RATE
    if seconds > max_seconds:
        raise _too_long(name, seconds, max_seconds)
    if seconds < MIN_SECONDS:
        raise InputRejected(f"**Too short to judge:** `{name}` lasts {seconds * 1000:.0f} ms; at least {MIN_SECONDS * 1000:.0f} ms of audio are needed.")
    return wave


def score_in_chunks(scorer: Scorer, wave: np.ndarray, name: str = "clip", progress=None, chunk_batches: int = 4) -> ClipScore:
    """What ``Scorer.score_waveform`` computes, a few batches of windows at a time.

    Windows are views into ``wave``; only one chunk of normalised copies exists at once, so memory
    beyond the decoded waveform stays bounded for long recordings, and progress can be reported.
    """
    spans = window_spans(len(wave), scorer.window, scorer.hop)
    scores = np.empty(len(spans), dtype=np.float64)
    familiarity: list = []  # each window's distance to the training audio, where the model has the check
    step = scorer.batch_size * chunk_batches
    for i in range(0, len(spans), step):
        chunk = spans[i : i + step]
        scores[i : i + len(chunk)] = scorer.score_windows([wave[s:e] for s, e in chunk], familiarity)
        if progress is not None:
            progress((i + len(chunk)) / len(spans), desc=f"scored {i + len(chunk)} of {len(spans)} windows")
    return scorer.summarise(name, len(wave), spans, scores.tolist(), scorer.vad and scorer.vad.probabilities(wave), familiarity)
