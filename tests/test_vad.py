"""Speech-aware verdicts: silence and noise get "no speech", speech (espeak-ng, made here) gets a verdict."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from racl.audio import to_mono_16k
from racl.scoring import NO_SPEECH, Scorer
from racl.vad import FRAME, SpeechDetector

SR = 16_000


def espeak(text: str, voice: str = "en") -> np.ndarray:
    """Speech made by espeak-ng (a Debian package scripts/setup.sh installs), at 16 kHz."""
    wav = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True, timeout=60).stdout
    data, rate = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    return to_mono_16k(data.T, rate)


SENTENCE = "The weather was cold and grey, so we stayed inside and read our books by the window all afternoon."


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return espeak(SENTENCE)


@pytest.fixture(scope="module")
def vad():
    return SpeechDetector()


@pytest.fixture()
def scorer(tiny_model_dir, vad):
    return Scorer.from_pretrained(str(tiny_model_dir), device="cpu", batch_size=4, window_seconds=2.0, hop_seconds=1.0, vad=True)


def noise(seconds: float, level: float) -> np.ndarray:
    return (level * np.random.default_rng(0).standard_normal(int(seconds * SR))).astype(np.float32)


def test_the_detector_hears_speech_and_not_silence_or_noise(vad, speech):
    p = vad.probabilities(speech)
    assert len(p) == -(-len(speech) // FRAME)
    assert vad.speech_seconds(p, 0, len(speech)) > 0.5 * len(speech) / SR
    for quiet in (np.zeros(3 * SR, np.float32), noise(3.0, 0.05), noise(3.0, 0.5)):
        assert vad.speech_seconds(vad.probabilities(quiet), 0, len(quiet)) < 0.2


@pytest.mark.parametrize("name, wave", [("silence", np.zeros(5 * SR, np.float32)), ("noise", noise(5.0, 0.1)), ("loud noise", noise(5.0, 0.7))])
def test_no_speech_gets_no_verdict(scorer, name, wave):
    result = scorer.score_waveform(wave, name)
    assert result.label == NO_SPEECH and result.score is None and result.p_bonafide is None
    assert len(result.windows) == 4 and all(w.speech is not None and np.isfinite(w.score) for w in result.windows)  # the timeline stays


def test_speech_gets_a_verdict_from_its_speech_windows_only(scorer, speech):
    silence = np.zeros(6 * SR, np.float32)
    result = scorer.score_waveform(np.concatenate([speech, silence]), "speech then silence")
    assert result.label in ("bonafide", "spoof") and result.score is not None
    voting = [w for w in result.windows if w.speech >= 0.5]
    assert 0 < len(voting) < len(result.windows)  # the silent windows are there, but do not vote
    assert result.score == pytest.approx(np.mean([w.score for w in voting]))
    plain = Scorer(scorer.model, scorer.extractor, window_seconds=2.0, hop_seconds=1.0).score_waveform(np.concatenate([speech, silence]))
    assert [w.score for w in plain.windows] == pytest.approx([w.score for w in result.windows], abs=1e-5)  # the VAD changes votes only


def test_cli_says_no_speech_and_keeps_the_timeline(tiny_model_dir, tmp_path, speech):
    sf.write(str(tmp_path / "speech.wav"), speech, SR)
    sf.write(str(tmp_path / "silence.wav"), np.zeros(3 * SR, np.float32), SR)
    base = [sys.executable, "-m", "racl.scoring", "--model", str(tiny_model_dir), "--vad"]
    proc = subprocess.run([*base, "--format", "json", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in json.loads(proc.stdout)}
    assert rows["silence.wav"]["label"] == NO_SPEECH and rows["silence.wav"]["score"] is None
    assert rows["silence.wav"]["windows"] and rows["silence.wav"]["windows"][0]["speech"] == 0.0
    assert rows["speech.wav"]["label"] in ("bonafide", "spoof") and rows["speech.wav"]["speech_seconds"] > 1.0
    table = subprocess.run([*base, str(tmp_path / "silence.wav")], capture_output=True, text=True, timeout=300).stdout
    assert NO_SPEECH in table.splitlines()[1]
