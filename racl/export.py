"""Write a complete Hub-ready model folder, and optionally push it.

The folder holds ``config.json`` (with ``auto_map``), ``model.safetensors``, ``preprocessor_config.json``,
the flat remote code (``REMOTE_CODE_FILES``: ``configuration_racl.py``, ``modeling_racl.py``, ...) and a model
card ``README.md`` with usage, score polarity, limitations and (when given) results as model-index.

    racl-export --config configs/model/tiny.json --out outputs/tiny-racl      # fresh random model
    racl-export --model outputs/run/best --out outputs/hub --push user/racl   # existing folder → Hub
    racl-export --model outputs/run/best --out outputs/run/best --onnx        # + model.onnx, model_int8.onnx
    racl-export --checkpoint outputs/run/checkpoints/step-1200 --out outputs/run/step-1200   # another step of a run

``--checkpoint`` takes the weights of a training checkpoint and the rest (config, preprocessing) from the
run's ``best/`` folder; the calibration fitted there belongs to another step, so it is reset to the plain
softmax and the command prints how to fit it again (``racl-eval --calibrate-on validation``).

``--onnx`` adds the graph (dynamic batch and length, with the attention mask) and its int8 dynamic
quantisation beside the safetensors, for ``racl-score --backend onnx`` (``racl.precision``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch
import yaml
from transformers import AutoFeatureExtractor, Wav2Vec2FeatureExtractor

from modeling_racl import RACLConfig, RACLForAudioClassification, frontend_for

from .config import read_model_config
from .hub import push_folder
from .labels import SAMPLING_RATE
from .precision import ONNX_FILES, ONNX_INPUTS

# The flat remote-code folder: every file of modeling_racl/ that the model imports (relative imports only).
REMOTE_CODE_FILES = (
    "configuration_racl.py",
    "modeling_racl.py",
    "loss_racl.py",
    "frontends_racl.py",
    "signal_racl.py",
    "whisper_racl.py",
    "aasist_racl.py",
    "familiarity_racl.py",
)


def default_feature_extractor(config: RACLConfig | None = None) -> Wav2Vec2FeatureExtractor:
    """The preprocessing the model's front-end expects: 16 kHz mono, attention mask returned, and per-utterance
    zero-mean unit-variance as XLS-R was trained with, except for a Whisper backbone, whose log-mel is computed
    by the model on the waveform as it is. Without a config: XLS-R's."""
    do_normalize = config is None or frontend_for(config).normalize_waveform
    return Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=SAMPLING_RATE, padding_value=0.0, do_normalize=do_normalize, return_attention_mask=True
    )


def front_end_sentence(config) -> str:
    return frontend_for(config).description


THREE_CLASSES = """ In training, reconstructions were a class of their own (bona fide / original spoof / reconstruction);
  the spoof logit is the log-sum-exp of the two spoof outputs, so the two labels and the score keep their meaning."""


def familiarity_sentence(config) -> str:
    if not config.familiarity_reference_size:
        return ""
    return (f"""
- The model carries a familiarity check (hidden state {config.familiarity_layer} of its encoder against
  {config.familiarity_reference_size} training windows): `racl-score` marks audio unlike the training audio
  `familiar: no` and the output's `familiarity` field gives the distance (threshold {config.familiarity_threshold:.4g}).
  The verdict on such audio was never validated: it can be wrong either way.""")


def model_card(config: RACLConfig, results: dict | None = None, repo_id: str | None = None, datasets: list[str] | None = None) -> str:
    """The model card: front matter (+ model-index from ``results``) and the text a user needs."""
    meta = {
        "library_name": "transformers",
        "pipeline_tag": "audio-classification",
        "tags": ["audio-deepfake-detection", "anti-spoofing", "racl", "aasist", config.backbone_config.model_type if config.frontend == "backbone" else config.frontend, "custom_code"],
        "license": "mit",
    }
    if datasets:
        meta["datasets"] = datasets
    if results:
        meta["model-index"] = [model_index_entry(repo_id or "racl", results)]
    name = repo_id or "<this folder or Hub id>"
    results_md = results_table(results) if results else "No evaluation results were attached to this export."
    body = f"""
# RACL audio deepfake detector

{front_end_sentence(config)}, an AASIST graph-attention head, trained with
Regularization-Assisted Contrastive Learning (RACL: cross-entropy + α·Lstd + β·Lenh + γ·Lreg with
α={config.racl_alpha}, β={config.racl_beta}, γ={config.racl_gamma}) on reconstructed hard samples, after
Cheng et al., *Diffusion Reconstruction towards Generalizable Audio Deepfake Detection* (2026).

## Usage

```python
from transformers import AutoModelForAudioClassification, AutoFeatureExtractor, pipeline

detector = pipeline("audio-classification", model="{name}", trust_remote_code=True)
detector("clip.wav")  # [{{'label': 'bonafide', 'score': ...}}, {{'label': 'spoof', 'score': ...}}]
```

Full-length scoring of files or folders (long files in {config.score_window_seconds:g} s windows, hop
{config.score_hop_seconds:g} s, window scores averaged):

```bash
racl-score --model {name} --format table path/to/audio/
```

## What the number means

- `score = logit[bonafide] - logit[spoof]`: **higher = more bona fide** (the ASVspoof convention; EER
  and min t-DCF are computed on this score).
- `p_bonafide = sigmoid({config.calibration_scale:.4g} · score + {config.calibration_bias:.4g})`, a logistic
  calibration fitted on the validation split. It is calibrated for audio like the training data only.
- Labels: `0 = bonafide`, `1 = spoof`. A reconstruction of real speech (codec, vocoder, diffusion) counts
  as spoof.{THREE_CLASSES if config.reconstruction_class else ""}{familiarity_sentence(config)}

## Results

{results_md}

## Limitations

- A detector trained on a few generators can recognise those generators' fingerprints and still fail on
  unseen ones: trust results on *unseen* attacks, and re-validate on your own audio before relying on it.
- Scores drift with channel, codec, language and loudness conditions unlike the training data; the
  calibrated probability is only as good as the match between your audio and the validation split.
- Audio is resampled to 16 kHz mono; content above 8 kHz is not seen.
- Not a forensic tool on its own: use it as one piece of evidence.
"""
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n" + body.lstrip("\n")


def model_index_entry(name: str, results: dict) -> dict:
    """``results``: {dataset_name: {"eer": fraction, "min_tdcf": ..., ...}} → one model-index entry."""
    entries = []
    for dataset, metrics in results.items():
        values = [{"type": "eer", "name": "EER (%)", "value": round(100 * float(metrics["eer"]), 3)}] if "eer" in metrics else []
        if metrics.get("min_tdcf") is not None:
            values.append({"type": "min_tdcf", "name": "min t-DCF", "value": round(float(metrics["min_tdcf"]), 4)})
        entries.append({"task": {"type": "audio-classification", "name": "Audio deepfake detection"}, "dataset": {"name": dataset, "type": dataset}, "metrics": values})
    return {"name": name, "results": entries}


def results_table(results: dict) -> str:
    lines = ["| test set | EER (%) | min t-DCF |", "|---|---|---|"]
    for dataset, metrics in results.items():
        eer = f"{100 * float(metrics['eer']):.2f}" if "eer" in metrics else "-"
        tdcf = f"{float(metrics['min_tdcf']):.4f}" if metrics.get("min_tdcf") is not None else "-"
        lines.append(f"| {dataset} | {eer} | {tdcf} |")
    return "\n".join(lines)


def export_model_folder(
    model: RACLForAudioClassification,
    out_dir: str | os.PathLike,
    feature_extractor=None,
    results: dict | None = None,
    repo_id: str | None = None,
    datasets: list[str] | None = None,
) -> Path:
    """Save everything a Hub model repo needs into ``out_dir`` (safetensors only) and return it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    (feature_extractor or default_feature_extractor(model.config)).save_pretrained(out)
    (out / "README.md").write_text(model_card(model.config, results, repo_id, datasets))
    if results:
        (out / "eval_results.json").write_text(json.dumps(results, indent=2))
    missing = [f for f in (*REMOTE_CODE_FILES, "config.json", "model.safetensors", "preprocessor_config.json") if not (out / f).exists()]
    if missing:
        raise RuntimeError(f"export to {out} is incomplete, missing: {', '.join(missing)}")
    return out


class _LogitsOnly(torch.nn.Module):
    """(input_values, attention_mask) → logits: the graph's one output."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_values, attention_mask):
        return self.model(input_values, attention_mask=attention_mask).logits


def export_onnx(model: RACLForAudioClassification, out_dir: str | os.PathLike, int8: bool = True, tolerance: float = 1e-3) -> list[Path]:
    """Write ``model.onnx`` (and ``model_int8.onnx``) into ``out_dir``; the fp32 graph is checked against torch."""
    import numpy as np
    import onnxruntime as ort

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    wrapper = _LogitsOnly(model).eval()
    # Two clips of unequal length: the example exercises padding and masking, so neither is traced as a constant.
    example = torch.randn(2, SAMPLING_RATE, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(2, SAMPLING_RATE, dtype=torch.long)
    mask[1, 3 * SAMPLING_RATE // 4 :] = 0
    dims = {name: {0: torch.export.Dim.DYNAMIC, 1: torch.export.Dim.DYNAMIC} for name in ONNX_INPUTS}
    path = out / ONNX_FILES["fp32"]
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(wrapper, (example, mask), str(path), dynamo=True, input_names=list(ONNX_INPUTS), output_names=["logits"],
                          dynamic_shapes=dims, verbose=False)
        expected = wrapper(example, mask).numpy()
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["logits"], {"input_values": example.numpy(), "attention_mask": mask.numpy()})[0]
    if not np.abs(got - expected).max() <= tolerance:
        raise RuntimeError(f"{path}: the ONNX graph's logits differ from torch's by {np.abs(got - expected).max():.3g} (> {tolerance})")
    written = [path]
    if int8:
        buffers = {f"model.{name}" for name, _ in model.named_buffers()}
        written.append(quantize_onnx(path, out / ONNX_FILES["int8"], buffers))
    return written


def quantize_onnx(path: Path, out: Path, fixed_weights: set[str]) -> Path:
    """onnxruntime's dynamic int8 quantisation of the graph's matrix products with learned weights.

    Products with a fixed signal-processing matrix (a buffer: the filterbank's, the sinc filters) stay fp32: their
    inputs are raw spectra, whose small energies a per-batch uint8 scale rounds to zero before the log (the demo
    filterbank model's EER went from 17 % to 51 % with them quantised). torch's int8 path leaves them out too: it
    quantises nn.Linear only.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(path), load_external_data=False).graph
    ops = ("MatMul", "Gemm")
    keep = [n.name for n in graph.node if n.op_type in ops and fixed_weights & set(n.input)]
    # uint8 weights: int8 ones saturate in the AVX2 kernels (score errors ~0.1 against ~0.004 measured on a tiny model)
    quantize_dynamic(str(path), str(out), weight_type=QuantType.QUInt8, op_types_to_quantize=list(ops), nodes_to_exclude=keep)
    return out


def model_from_checkpoint(checkpoint: str | os.PathLike) -> tuple[RACLForAudioClassification, object]:
    """(model, feature extractor) of a training checkpoint ``RUN/checkpoints/step-N``, calibration reset."""
    from safetensors.torch import load_file

    ckpt = Path(checkpoint)
    weights, best = ckpt / "model.safetensors", ckpt.parent.parent / "best"
    if not weights.is_file():
        raise ValueError(f"{ckpt}: not a training checkpoint (no model.safetensors; expected RUN/checkpoints/step-N)")
    if not (best / "config.json").is_file():
        raise ValueError(f"{ckpt}: its run has no model folder {best} to take the config from (written at the run's first evaluation)")
    model = RACLForAudioClassification.from_pretrained(best)
    try:
        model.load_state_dict(load_file(str(weights)), strict=True)
    except RuntimeError as error:  # torch lists every mismatched tensor: one line is enough to say what is wrong
        raise ValueError(f"{ckpt}: its weights do not fit the model of {best}: {str(error).splitlines()[0]}") from None
    model.config.calibration_scale, model.config.calibration_bias = 1.0, 0.0
    return model, AutoFeatureExtractor.from_pretrained(best)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="racl-export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="an existing model folder or Hub id to re-export")
    source.add_argument("--config", help="a RACLConfig JSON: export a freshly initialised model (random weights)")
    source.add_argument("--checkpoint", help="a training checkpoint, RUN/checkpoints/step-N: that step's model (config from RUN/best)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--results", help="JSON file {dataset: {eer: fraction, min_tdcf: ...}} for the card's model-index")
    parser.add_argument("--push", metavar="REPO_ID", help="upload the folder to this Hub model repo")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--onnx", action="store_true", help="also write model.onnx and model_int8.onnx (needs the onnx extra)")
    args = parser.parse_args(argv)
    try:
        if args.config:
            model = RACLForAudioClassification(RACLConfig(**read_model_config(args.config)))
            fe = None
        elif args.checkpoint:
            model, fe = model_from_checkpoint(args.checkpoint)
        else:
            model = RACLForAudioClassification.from_pretrained(args.model)
            fe = AutoFeatureExtractor.from_pretrained(args.model)
        results = json.loads(Path(args.results).read_text()) if args.results else None
        out = export_model_folder(model, args.out, fe, results, repo_id=args.push)
        if args.onnx:
            for path in export_onnx(model.eval(), out):
                print(f"racl-export: wrote {path}")
    except ImportError as error:
        print(f"racl-export: --onnx needs {error.name}: pip install 'racl[onnx]'", file=sys.stderr)
        return 2
    except (OSError, ValueError) as error:
        print(f"racl-export: {error}", file=sys.stderr)
        return 2
    print(f"racl-export: wrote {out}")
    if args.checkpoint:
        print(f"racl-export: calibration reset to the softmax; fit it for this step with racl-eval --model {out} "
              "--data DATA --calibrate-on validation")
    if args.push:
        print(f"racl-export: pushed {push_folder(out, args.push, private=args.private, commit_message='Upload RACL detector')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
