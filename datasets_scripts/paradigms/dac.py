"""Descript Audio Codec round trip (``transformers.DacModel``). Default ``descript/dac_16khz``."""

from __future__ import annotations

from .codec import CodecReconstructor, load_model

REQUIREMENTS: dict[str, str] = {}
DEFAULT_REPO = "descript/dac_16khz"
HUB_FILES = [(DEFAULT_REPO, "config.json")]


class DacReconstructor(CodecReconstructor):
    """Neural-codec resynthesis; deterministic (quantizer dropout is off in eval mode).

    Args:
        repo: Hub id of a DAC checkpoint.
        n_quantizers: codebooks used (``None``: all; fewer = lower bitrate, more trace).
        config / model: a config (seeded random init, for tests) or a ready model instead of ``repo``.
    """

    name = "dac"

    def __init__(self, repo: str = DEFAULT_REPO, n_quantizers: int | None = None, config=None, model=None,
                 device: str = "cpu", **kwargs):
        from transformers import DacModel

        super().__init__(**kwargs)
        model = load_model(DacModel, repo, config, model)
        self.n_quantizers = n_quantizers
        self._setup(model, model.config.sampling_rate, model.config.hop_length, device)

    def _roundtrip(self, x, mask):
        # DAC has no padding mask: the clip is zero-padded to a stride multiple and trimmed after.
        quantized = self.model.encode(x, n_quantizers=self.n_quantizers).quantized_representation
        return self.model.decode(quantized).audio_values


RECONSTRUCTOR = DacReconstructor
