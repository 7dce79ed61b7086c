"""Where there is speech: silero-vad's speech probability per 32 ms frame, for speech-aware verdicts.

A detector of spoofed *speech* has nothing to say about silence, noise or music, yet it gives every
window a score; with a :class:`SpeechDetector`, ``racl.scoring`` lets only the windows that hold enough
speech vote, and a file without any gets "no speech" instead of a verdict.

silero-vad's batched ONNX model (the ``vad`` extra: its weights ship in the wheel) runs one onnxruntime
call per ~16 s of audio, about 0.3 % of real time on one CPU core; its LSTM state is carried across
calls, so a long file pushed in pieces gets the probabilities the whole file gets.
"""

from __future__ import annotations

import numpy as np

from .labels import SAMPLING_RATE

REQUIREMENTS = ("silero-vad==6.2.3", "onnxruntime>=1.20,<2")  # setup.cfg's vad extra; tests/test_setup.py checks it
MODEL_FILE = "silero_vad_16k_sequence.onnx"  # the batched model: many frames per call, the LSTM state in and out
FRAME = 512  # samples per probability at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous frame the model sees before each frame
BLOCK_FRAMES = 512  # frames per onnxruntime call


class SpeechDetector:
    """Speech probabilities of 16 kHz audio, and how many seconds of speech a stretch of it holds."""

    def __init__(self, threshold: float = 0.5, min_speech_seconds: float = 0.5):
        import importlib.resources

        import torch

        threads = torch.get_num_threads()  # importing silero_vad sets torch to one thread: put it back
        try:
            import onnxruntime as ort

            weights = importlib.resources.files("silero_vad.data") / MODEL_FILE
        except ImportError:
            raise ValueError("speech detection needs silero-vad and onnxruntime: pip install 'racl[vad]'") from None
        finally:
            torch.set_num_threads(threads)
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1  # a small LSTM: more threads only cost
        self.session = ort.InferenceSession(str(weights), options, providers=["CPUExecutionProvider"])
        self.threshold = threshold
        self.min_speech_seconds = min_speech_seconds

    def stream(self) -> "SpeechStream":
        return SpeechStream(self.session)

    def probabilities(self, wave: np.ndarray) -> np.ndarray:
        """One speech probability per 512-sample frame of ``wave`` (the last frame zero-padded)."""
        stream = self.stream()
        return np.concatenate([stream.push(wave), stream.finish()])

    def speech_seconds(self, probabilities: np.ndarray, start: int, end: int) -> float:
        """Seconds of speech between samples ``start`` and ``end`` (frames at or over the threshold)."""
        frames = probabilities[start // FRAME : -(-end // FRAME)]
        return float((frames >= self.threshold).sum()) * FRAME / SAMPLING_RATE

    def votes(self, speech_seconds: float, window_samples: int) -> bool:
        """A window votes when it holds ``min_speech_seconds`` of speech (half of a shorter window)."""
        return speech_seconds >= min(self.min_speech_seconds, 0.5 * window_samples / SAMPLING_RATE)


class SpeechStream:
    """Pushes audio in pieces of any length; returns the probabilities of the frames completed so far."""

    def __init__(self, session):
        self.session = session
        self.hidden = np.zeros((1, 1, 128), dtype=np.float32)
        self.cell = np.zeros((1, 1, 128), dtype=np.float32)
        self.context = np.zeros(CONTEXT, dtype=np.float32)
        self.rest = np.zeros(0, dtype=np.float32)

    def push(self, samples: np.ndarray) -> np.ndarray:
        audio = np.concatenate([self.rest, np.asarray(samples, dtype=np.float32)])
        whole = len(audio) // FRAME * FRAME
        self.rest = audio[whole:]
        audio = audio[:whole]
        out = [self._run(audio[i : i + BLOCK_FRAMES * FRAME]) for i in range(0, whole, BLOCK_FRAMES * FRAME)]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def finish(self) -> np.ndarray:
        """The last, zero-padded frame (none when the audio ended on a frame boundary)."""
        if not len(self.rest):
            return np.zeros(0, dtype=np.float32)
        last = np.zeros(FRAME, dtype=np.float32)
        last[: len(self.rest)] = self.rest
        self.rest = np.zeros(0, dtype=np.float32)
        return self._run(last)

    def _run(self, audio: np.ndarray) -> np.ndarray:
        frames = audio.reshape(-1, FRAME)
        contexts = np.concatenate([self.context[None], frames[:-1, -CONTEXT:]])
        self.context = frames[-1, -CONTEXT:].copy()
        probs, self.hidden, self.cell = self.session.run(
            ["speech_probs", "hn", "cn"], {"input": np.concatenate([contexts, frames], axis=1), "h": self.hidden, "c": self.cell}
        )
        return np.asarray(probs, dtype=np.float32).reshape(-1)
