"""SemantiCodec round trip (optional package ``semanticodec``): AudioMAE semantic tokens plus
acoustic tokens, decoded by a latent-diffusion decoder. Ultra-low bitrate (0.31-1.40 kbps).

The package is an optional extra (``pip install 'racl[semanticodec]'``; upstream code:
haoheliu/SemantiCodec-inference). Its weights come from the Hub (``haoheliu/SemantiCodec``) on
first use, so this paradigm does not run offline.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import torch

from .base import Reconstructor

INSTALL_HINT = "pip install 'racl[semanticodec]' (the semanticodec package of haoheliu/SemantiCodec-inference)"
REQUIREMENTS = {"semanticodec": INSTALL_HINT}
RUNS_OFFLINE = False  # the package downloads its checkpoints itself


def _import_semanticodec():
    try:
        from semanticodec import SemantiCodec
    except ImportError as error:
        message = f"the 'semanticodec' paradigm needs the optional package semanticodec: {INSTALL_HINT}"
        raise ImportError(message) from error
    return SemantiCodec


class SemantiCodecReconstructor(Reconstructor):
    """Token round trip through SemantiCodec; seeded (its decoder samples with DDIM).

    Args:
        token_rate: tokens per second, 25, 50 or 100.
        semantic_vocab_size: 4096, 8192, 16384 or 32768.
        ddim_sample_step / cfg_scale: the decoder's sampling steps and guidance.
    """

    name = "semanticodec"
    length_tolerance = 2560  # the codec works in 0.16 s AudioMAE patches

    def __init__(self, token_rate: int = 100, semantic_vocab_size: int = 16384, ddim_sample_step: int = 50,
                 cfg_scale: float = 2.0, device: str | None = None, **kwargs):
        super().__init__(**kwargs)
        codec_class = _import_semanticodec()
        self.codec = codec_class(token_rate=token_rate, semantic_vocab_size=semantic_vocab_size,
                                 ddim_sample_step=ddim_sample_step, cfg_scale=cfg_scale)
        # The package picks its own device; follow it unless told otherwise.
        self.to(device or str(self.codec.device))

    def modules(self):
        return (self.codec,)

    def to(self, device):
        super().to(device)
        self.codec.device = torch.device(device)
        return self

    def _one(self, wave: np.ndarray, seed: int) -> np.ndarray:
        import soundfile

        with tempfile.TemporaryDirectory() as folder:  # its encoder reads audio from a file path
            path = os.path.join(folder, "clip.wav")
            soundfile.write(path, wave, self.sampling_rate, subtype="FLOAT")
            devices = [torch.device(self.device)] if self.device.startswith("cuda") else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                tokens = self.codec.encode(path)
                audio = self.codec.decode(tokens)
        audio = audio.detach().cpu().numpy() if torch.is_tensor(audio) else np.asarray(audio)
        return audio.reshape(-1)

    @torch.inference_mode()
    def _reconstruct_batch(self, waves, seeds):
        return [self._one(w, s) for w, s in zip(waves, seeds)]


RECONSTRUCTOR = SemantiCodecReconstructor
