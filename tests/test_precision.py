"""Every way of running the forward pass (bf16, int8, ONNX fp32 and int8) gives fp32's verdicts and nearly its scores."""

import subprocess
import sys

import numpy as np
import pytest

from conftest import speech_like

from racl.precision import ONNX_FILES
from racl.scoring import Scorer

# |score - fp32 score| allowed per window and clip, on the tiny config, whose random weights give scores of
# 0.57-0.60 (largest differences measured: bf16 0.0035, torch int8 0.0071, ONNX fp32 6e-8, ONNX int8 0.0038)
TOLERANCE = {("bf16", "torch"): 0.01, ("int8", "torch"): 0.01, ("fp32", "onnx"): 1e-4, ("int8", "onnx"): 0.01}


def clips():
    """Windows of unequal length (padded, masked); a tone and a square wave score furthest apart on the tiny model."""
    t = np.arange(32000) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    square = (0.3 * np.sign(np.sin(2 * np.pi * 150 * t))).astype(np.float32)
    return [tone, speech_like(3.3, 1), square, square[:11200]]


def calibrated_scorer(folder, threshold: float = 0.0, **kwargs) -> Scorer:
    """A scorer whose decision threshold is ``threshold``."""
    scorer = Scorer.from_pretrained(str(folder), device="cpu", batch_size=4, window_seconds=1.0, hop_seconds=0.5, **kwargs)
    scorer.model.config.calibration_scale, scorer.model.config.calibration_bias = 1.0, -threshold
    return scorer


def assert_agrees(reference, results, tolerance, threshold):
    """Scores within ``tolerance``, and the same verdict on every clip further than that from the threshold."""
    clear = [i for i, r in enumerate(reference) if abs(r.score - threshold) > tolerance]
    assert {reference[i].label for i in clear} == {"bonafide", "spoof"}, "the test needs clear verdicts of both kinds"
    assert [results[i].label for i in clear] == [reference[i].label for i in clear]
    got = [w.score for r in results for w in r.windows]
    want = [w.score for r in reference for w in r.windows]
    np.testing.assert_allclose(got, want, atol=tolerance)
    np.testing.assert_allclose([r.score for r in results], [r.score for r in reference], atol=tolerance)


@pytest.fixture(scope="module")
def decision_threshold(tiny_model_dir) -> float:
    """Midway across the widest gap between fp32's clip scores, so that the verdicts differ between clips."""
    scores = sorted(r.score for r in calibrated_scorer(tiny_model_dir).score_waveforms(clips()))
    i = int(np.argmax(np.diff(scores)))
    return (scores[i] + scores[i + 1]) / 2


@pytest.fixture(scope="module")
def reference(tiny_model_dir, decision_threshold):
    return calibrated_scorer(tiny_model_dir, decision_threshold).score_waveforms(clips())


def test_the_calibration_splits_the_clips(reference):
    assert {r.label for r in reference} == {"bonafide", "spoof"}  # else equal verdicts would prove nothing


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_torch_precisions_agree_with_fp32(tiny_model_dir, reference, decision_threshold, precision):
    scorer = calibrated_scorer(tiny_model_dir, decision_threshold, precision=precision)
    assert_agrees(reference, scorer.score_waveforms(clips()), TOLERANCE[(precision, "torch")], decision_threshold)


def test_int8_quantises_every_linear_layer(tiny_model_dir):
    import torch

    model = calibrated_scorer(tiny_model_dir, precision="int8").model
    assert not any(type(m) is torch.nn.Linear for m in model.modules())
    assert any("quantized" in type(m).__module__ for m in model.modules())


def test_bad_choices_are_one_clear_error(tiny_model_dir):
    with pytest.raises(ValueError, match="bf16 is a torch path"):
        Scorer.from_pretrained(str(tiny_model_dir), backend="onnx", precision="bf16")
    with pytest.raises(ValueError, match="unknown precision"):
        Scorer.from_pretrained(str(tiny_model_dir), precision="fp16")
    with pytest.raises(ValueError, match="racl-export --model .* --onnx"):
        Scorer.from_pretrained(str(tiny_model_dir), backend="onnx")  # the folder has no graph yet
    proc = subprocess.run([sys.executable, "-m", "racl.scoring", "--model", str(tiny_model_dir), "--backend", "onnx", "x.wav"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "--onnx" in proc.stderr


@pytest.fixture(scope="module")
def onnx_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model re-exported with its ONNX graphs, through the CLI."""
    out = tmp_path_factory.mktemp("tiny-onnx")
    proc = subprocess.run([sys.executable, "-m", "racl.export", "--model", str(tiny_model_dir), "--out", str(out), "--onnx"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.mark.slow  # torch.export of the encoder takes about a minute on two loaded cores
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_onnx_backend_agrees_with_fp32(onnx_model_dir, reference, decision_threshold, precision):
    assert (onnx_model_dir / ONNX_FILES[precision]).is_file() and (onnx_model_dir / "model.safetensors").is_file()
    scorer = calibrated_scorer(onnx_model_dir, decision_threshold, backend="onnx", precision=precision)
    assert scorer.model.device.type == "meta"  # the weights live in the onnxruntime session only
    assert_agrees(reference, scorer.score_waveforms(clips()), TOLERANCE[(precision, "onnx")], decision_threshold)


@pytest.mark.slow
def test_cli_scores_with_the_onnx_backend(onnx_model_dir, write_wav):
    path = write_wav("a.wav", seconds=2.0)
    outputs = []
    for backend in ("torch", "onnx"):
        proc = subprocess.run([sys.executable, "-m", "racl.scoring", "--model", str(onnx_model_dir), "--backend", backend, "--format", "csv", str(path)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout.splitlines()[1].split(","))
    assert outputs[0][3] == outputs[1][3] and float(outputs[0][1]) == pytest.approx(float(outputs[1][1]), abs=1e-3)


@pytest.mark.slow
def test_racl_eval_scores_a_dataset_on_the_onnx_and_int8_paths(onnx_model_dir, tmp_path):
    from conftest import make_tiny_dataset
    from racl.evaluation.cli import main as evaluate

    data = make_tiny_dataset(tmp_path / "data", clips_per_speaker=2)
    scores = {}
    for backend, precision in (("torch", "fp32"), ("torch", "int8"), ("onnx", "fp32")):
        out = tmp_path / f"{backend}-{precision}"
        assert evaluate(["--model", str(onnx_model_dir), "--data", str(data), "--device", "cpu", "--out", str(out),
                         "--backend", backend, "--precision", precision]) == 0
        scores[backend, precision] = dict(line.split() for line in (out / "scores.txt").read_text().splitlines())
        assert (out / "embeddings.png").exists() == (backend == "torch")  # the graph returns logits only
    reference = scores["torch", "fp32"]
    for (backend, precision), table in scores.items():
        assert table.keys() == reference.keys()
        tolerance = TOLERANCE.get((precision, backend), 0.0) + 1e-6  # scores.txt rounds to 6 decimals
        assert max(abs(float(table[u]) - float(reference[u])) for u in reference) <= tolerance, (backend, precision)
