"""Overlapping windows scored from one encoder pass over the span they cover, so no sample is encoded twice.

Windows overlap (hop = half a window by default): encoded one by one, every sample goes through the
pretrained encoder twice. Here a run of consecutive windows is encoded once as one span; each window then
takes the frames of the span's hidden states that lie inside it (as many as it would get alone) and goes
through the aggregation and the head as it would alone (``forward(layer_states=...)``). The timeline keeps
its resolution; a window's score differs a little from its stand-alone score, since the encoder saw the
span's context around it (and the span is normalised as a whole).

For the wav2vec2 family of encoders (XLS-R, WavLM, HuBERT, Data2VecAudio) on the torch backend.
"""

from __future__ import annotations

import numpy as np
import torch

from modeling_racl import RACLForAudioClassification

from .labels import SAMPLING_RATE


def conv_frames(config, num_samples: int) -> int:
    """Frames the convolutional feature encoder makes of ``num_samples`` samples."""
    for kernel, stride in zip(config.conv_kernel, config.conv_stride):
        num_samples = (num_samples - kernel) // stride + 1
    return max(num_samples, 0)


def frame_stride(config) -> int:
    return int(np.prod(config.conv_stride))


def check_span_model(model) -> None:
    backbone = getattr(model, "backbone", None)
    if getattr(model, "aggregation", None) is None or not hasattr(getattr(backbone, "config", None), "conv_stride"):
        raise ValueError("span encoding needs a wav2vec2-family encoder (XLS-R, WavLM, HuBERT, Data2VecAudio) on the torch backend")


@torch.inference_mode()
def span_scores(model, extractor, autocast, segment: np.ndarray, offset: int, spans: list[tuple[int, int]]) -> np.ndarray:
    """Scores of the windows ``spans`` (sample positions; ``segment`` starts at sample ``offset`` and covers them all)."""
    config = model.backbone.config
    stride = frame_stride(config)
    first, last = spans[0][0], spans[-1][1]
    values = extractor([segment[first - offset : last - offset]], sampling_rate=SAMPLING_RATE, return_tensors="pt")["input_values"]
    device = next(model.parameters()).device
    with autocast():
        out = model.frontend.features(model.backbone, values.to(device), None)
        layers = torch.stack(out.hidden_states, dim=1)[0]  # (L+1, T, H)
        total = layers.shape[1]
        branch = getattr(model, "spectral", None)  # its frames are sliced as the hidden states are
        spectral = None if branch is None else branch.frames(values.to(device), None, total)[0]  # (T, bins)
        bounds = []
        for s, e in spans:
            start = -(-(s - first) // stride)  # the first frame that starts inside the window
            bounds.append((start, min(start + conv_frames(config, e - s), total)))
        # the package's own padding, also for a model folder whose remote code predates it
        inputs = RACLForAudioClassification.pad_layer_states([layers[:, s:e].transpose(0, 1) for s, e in bounds],
                                                             None if spectral is None else [spectral[s:e] for s, e in bounds])
        logits = model(**inputs).logits
    return model.scores_from_logits(logits.float()).cpu().numpy()
