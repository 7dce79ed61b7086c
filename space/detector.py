"""The loaded model plus the Space's limits: one upload in, the page's four outputs out.

Every answer, including "this file cannot be read", is returned as the page's text rather than
raised, so gradio never shows an error toast for a recording.
"""

from __future__ import annotations

import logging
from pathlib import Path

from racl import SAMPLING_RATE
from racl.scoring import Scorer
from recording import InputRejected, read_recording, score_in_chunks
from render import spectrogram_image, timeline_image
from settings import Settings
from verdict import how_to_read, verdict_markdown

log = logging.getLogger("racl.space")


class Detector:
    """``analyse`` turns one upload into (verdict markdown, {label: probability}, timeline, spectrogram)."""

    def __init__(self, scorer: Scorer, settings: Settings):
        self.scorer = scorer
        self.settings = settings
        self.threshold = scorer.decision_score

    @property
    def window_seconds(self) -> float:
        return self.scorer.window / SAMPLING_RATE

    @property
    def hop_seconds(self) -> float:
        return self.scorer.hop / SAMPLING_RATE

    def how_to_read(self) -> str:
        return how_to_read(self.threshold, self.window_seconds, self.hop_seconds)

    def analyse(self, path: str | None, progress=None):
        """(verdict markdown, {label: probability}, timeline image, spectrogram image)."""
        if not path:
            return message("Upload a recording or record one with the microphone, then press **Analyse**.")
        try:
            wave = read_recording(path, self.settings.max_seconds)
            result = score_in_chunks(self.scorer, wave, Path(path).name, progress, chunk_batches=4)
            return (
                verdict_markdown(result, self.threshold, self.window_seconds, self.hop_seconds),
                None if result.p_bonafide is None else {"bona fide": result.p_bonafide, "spoof": 1.0 - result.p_bonafide},
                timeline_image(result, self.threshold),
                spectrogram_image(wave),
            )
        except InputRejected as rejected:
            return message(str(rejected))
        except Exception as error:  # keep the page usable; the traceback goes to the server log only
            log.exception("analysis of %s failed", path)
            return message(f"**Something went wrong while analysing this recording** ({type(error).__name__}). Please try another file.")


def message(text: str):
    """The page's outputs for an answer that is text only."""
    return text, None, None, None
