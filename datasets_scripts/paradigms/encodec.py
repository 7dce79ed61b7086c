"""EnCodec round trip (``transformers.EncodecModel``): residual vector quantisation at a chosen
bandwidth, then decoding. Default ``facebook/encodec_24khz`` at 6 kbps."""

from __future__ import annotations

from .codec import CodecReconstructor, load_model

REQUIREMENTS: dict[str, str] = {}
DEFAULT_REPO = "facebook/encodec_24khz"
HUB_FILES = [(DEFAULT_REPO, "config.json")]


class EncodecReconstructor(CodecReconstructor):
    """Neural-codec resynthesis; deterministic (no sampling in EnCodec's inference path).

    Args:
        repo: Hub id of an EnCodec checkpoint.
        bandwidth: target kbps, one of the model's ``config.target_bandwidths`` (lower = more trace).
        config / model: a config (seeded random init, for tests) or a ready model instead of ``repo``.
    """

    name = "encodec"

    def __init__(self, repo: str = DEFAULT_REPO, bandwidth: float | None = 6.0, config=None, model=None,
                 device: str = "cpu", **kwargs):
        from transformers import EncodecModel

        super().__init__(**kwargs)
        model = load_model(EncodecModel, repo, config, model)
        bandwidths = list(model.config.target_bandwidths)
        if bandwidth is not None and bandwidth not in bandwidths:
            raise ValueError(f"bandwidth {bandwidth} not offered by this EnCodec; choose one of {bandwidths}")
        self.bandwidth = bandwidth if bandwidth is not None else bandwidths[-1]
        self.channels = int(model.config.audio_channels)
        self._setup(model, model.config.sampling_rate, model.config.hop_length, device)

    def _roundtrip(self, x, mask):
        if self.channels > 1:  # a stereo codec gets the mono clip on every channel
            x, mask = x.expand(-1, self.channels, -1), mask.expand(-1, self.channels, -1)
        encoded = self.model.encode(x, padding_mask=mask, bandwidth=self.bandwidth)
        return self.model.decode(
            encoded.audio_codes, encoded.audio_scales, padding_mask=mask,
            last_frame_pad_length=encoded.last_frame_pad_length,
        ).audio_values


RECONSTRUCTOR = EncodecReconstructor
