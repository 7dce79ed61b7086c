"""Tiny random-initialised stand-ins for the neural paradigms' pretrained weights (tests only).

``get_reconstructor(name, **tiny_options(name))`` builds the real classes (EncodecModel, DacModel,
SpeechT5HifiGan, AudioLDM's diffusers parts) at toy size, so the tests exercise the whole path
offline in a second or two. Their output is noise-like: only the plumbing is real.

Imported by the test modules as ``from paradigm_fixtures import ...`` (pytest puts ``tests/`` on
the path of test modules without ``__init__.py``, as it does for ``conftest``).
"""

from __future__ import annotations

from racl.labels import SAMPLING_RATE


def tiny_encodec_config():
    """A 24 kHz mono EnCodec config with ~50k parameters (hop 80, up to 6 kbps)."""
    from transformers import EncodecConfig

    return EncodecConfig(target_bandwidths=[1.5, 3.0, 6.0], sampling_rate=24_000, audio_channels=1,
                         hidden_size=16, num_filters=4, num_residual_layers=1, upsampling_ratios=[8, 5, 2],
                         num_lstm_layers=1, codebook_size=64)


def tiny_dac_config():
    """A 16 kHz DAC config with ~30k parameters (hop 64, two codebooks)."""
    from transformers import DacConfig

    return DacConfig(encoder_hidden_size=4, downsampling_ratios=[2, 4, 8], decoder_hidden_size=16,
                     n_codebooks=2, codebook_size=16, codebook_dim=4, sampling_rate=SAMPLING_RATE)


def tiny_hifigan_config():
    """A 16 kHz SpeechT5HifiGan config on AudioLDM's mel (64 bins, hop 160)."""
    from transformers import SpeechT5HifiGanConfig

    return SpeechT5HifiGanConfig(model_in_dim=64, sampling_rate=SAMPLING_RATE, upsample_initial_channel=16,
                                 upsample_rates=[10, 4, 4], upsample_kernel_sizes=[20, 8, 8],
                                 resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
                                 normalize_before=False)


def tiny_audioldm_components(seed: int = 0) -> dict:
    """Random, tiny instances of AudioLDM's component classes.

    Same classes and data layout as ``cvssp/audioldm-s-full-v2`` (16 kHz, 64 mels, hop 160,
    class-label conditioning), a few thousand parameters each.
    """
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import SpeechT5HifiGan

    torch.manual_seed(seed)
    vae = AutoencoderKL(in_channels=1, out_channels=1, latent_channels=4, block_out_channels=(8, 16),
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        layers_per_block=1, norm_num_groups=4)
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=(8, 16), attention_head_dim=2, norm_num_groups=4,
        class_embed_type="simple_projection", projection_class_embeddings_input_dim=8, class_embeddings_concat=True,
    )
    vocoder = SpeechT5HifiGan(tiny_hifigan_config())
    # AudioLDM's training schedule.
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_start=0.0015, beta_end=0.0195,
                              beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False)
    return {"vae": vae, "unet": unet, "scheduler": scheduler, "vocoder": vocoder}


def tiny_options(name: str) -> dict:
    """Options for :func:`~datasets_scripts.paradigms.get_reconstructor` that avoid downloads
    (empty for weightless paradigms)."""
    if name == "encodec":
        return {"config": tiny_encodec_config()}
    if name == "dac":
        return {"config": tiny_dac_config()}
    if name == "hifigan":
        return {"backend": "speecht5", "config": tiny_hifigan_config()}
    if name == "diffusion":
        return {"components": tiny_audioldm_components(), "steps": 10, "strength": 0.5}
    if name == "semanticodec":
        raise ValueError("semanticodec has no tiny stand-in (its package builds its own models)")
    return {}
