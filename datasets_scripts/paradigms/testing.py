"""Tiny random-initialised stand-ins for the neural paradigms' pretrained weights.

``get_reconstructor(name, **tiny_options(name))`` builds the real classes (EncodecModel, DacModel,
SpeechT5HifiGan, AudioLDM's diffusers parts) at toy size, so tests and smoke runs exercise the
whole path offline in a second or two. Their output is noise-like: only the plumbing is real.
"""

from __future__ import annotations


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
                     n_codebooks=2, codebook_size=16, codebook_dim=4, sampling_rate=16_000)


def tiny_hifigan_config():
    """A 16 kHz SpeechT5HifiGan config on AudioLDM's mel (64 bins, hop 160)."""
    from transformers import SpeechT5HifiGanConfig

    return SpeechT5HifiGanConfig(model_in_dim=64, sampling_rate=16_000, upsample_initial_channel=16,
                                 upsample_rates=[10, 4, 4], upsample_kernel_sizes=[20, 8, 8],
                                 resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
                                 normalize_before=False)


def tiny_options(name: str) -> dict:
    """Options for :func:`get_reconstructor` that avoid downloads (empty for weightless paradigms)."""
    if name == "encodec":
        return {"config": tiny_encodec_config()}
    if name == "dac":
        return {"config": tiny_dac_config()}
    if name == "hifigan":
        return {"backend": "speecht5", "config": tiny_hifigan_config()}
    if name == "diffusion":
        from .diffusion import tiny_audioldm_components

        return {"components": tiny_audioldm_components(), "steps": 10, "strength": 0.5}
    if name == "semanticodec":
        raise ValueError("semanticodec has no tiny stand-in (its package builds its own models)")
    return {}
