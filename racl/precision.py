"""How a detector's forward pass runs: in fp32, under bf16 autocast, with int8 Linear layers, or as ONNX.

Every path returns the logits of a batch of windows as a float32 tensor, so scores, probabilities and
verdicts are computed the same way whichever path made them (``racl.scoring``). The ONNX graph is the
one ``racl-export --onnx`` writes beside ``model.safetensors`` (``ONNX_FILES``).

- ``fp32``: the model as trained.
- ``bf16``: ``torch.autocast`` to bfloat16: matmuls and convolutions in bf16, reductions in fp32. Fast
  where the device has native bf16 (recent GPUs, CPUs with AVX-512 BF16 or AMX); emulated elsewhere.
- ``int8``: dynamic quantisation of every ``nn.Linear`` (weights int8, activations quantised per batch):
  torch's on CPU, onnxruntime's for the ONNX graph. The convolutional feature encoder stays fp32.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "int8")
BACKENDS = ("torch", "onnx")
ONNX_FILES = {"fp32": "model.onnx", "int8": "model_int8.onnx"}  # beside model.safetensors
ONNX_INPUTS = ("input_values", "attention_mask")
# racl-export --onnx and --backend onnx: setup.cfg's onnx extra (torch.onnx's exporter needs onnx and onnxscript)
ONNX_REQUIREMENTS = ("onnx>=1.20,<2", "onnxscript>=0.5,<1", "onnxruntime>=1.20,<2")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 matmuls in hardware (else autocast emulates them, slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def check_choice(precision: str, backend: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "onnx" and precision == "bf16":
        raise ValueError("the ONNX backend runs fp32 or int8; bf16 is a torch path (--backend torch)")


class TorchRunner:
    """The PyTorch model at a precision; for int8 its Linear layers are replaced by quantised ones, in place."""

    def __init__(self, model: torch.nn.Module, precision: str = "fp32"):
        check_choice(precision, "torch")
        self.device = next(model.parameters()).device
        self.precision = precision
        if precision == "int8":
            if self.device.type != "cpu":
                raise ValueError(f"int8 dynamic quantisation runs on the CPU, not on {self.device}; use --precision bf16 there")
            with warnings.catch_warnings():  # torch.ao's eager quantisation works in this torch; only its successor is announced
                warnings.simplefilter("ignore")
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
        elif precision == "bf16" and not native_bf16(self.device):
            logger.warning("%s has no native bf16: autocast emulates it, expect it slower than fp32", self.device)
        self.model = model

    def autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @torch.inference_mode()
    def __call__(self, input_values: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            logits = self.model(input_values.to(self.device), attention_mask=attention_mask.to(self.device)).logits
        return logits.float().cpu()


class OnnxRunner:
    """An onnxruntime session of the exported graph (CPU; one intra-op thread per torch thread)."""

    def __init__(self, folder: str | os.PathLike, precision: str = "fp32", threads: int | None = None):
        check_choice(precision, "onnx")
        path = Path(folder) / ONNX_FILES[precision]
        if not path.is_file():
            raise ValueError(f"{folder} has no {path.name}: write it with racl-export --model {folder} --out {folder} --onnx")
        try:
            import onnxruntime as ort
        except ImportError:
            raise ValueError("the ONNX backend needs onnxruntime: pip install 'racl[onnx]'") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.device = torch.device("cpu")
        self.precision = precision

    def __call__(self, input_values: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        feeds = {"input_values": input_values.float().numpy(), "attention_mask": attention_mask.long().numpy()}
        return torch.from_numpy(self.session.run(["logits"], feeds)[0]).float()
