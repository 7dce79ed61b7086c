"""racl-eval on a set of one class: the share of clips given the other label, as racl-score labels them."""

import json
import math
import shutil

import numpy as np
import pytest

from racl.evaluation.cli import main
from racl.evaluation.one_class import summarize_one_class
from racl.evaluation.table import ScoreTable
from racl.scoring import Scorer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _table(scores, label, speakers, attacks=None, reconstructions=None):
    n = len(scores)
    reconstructions = reconstructions or ["none"] * n
    return ScoreTable([f"u{k}" for k in range(n)], np.array(scores, dtype=float), np.full(n, label), attacks or ["-"] * n,
                      reconstructions, np.array([r != "none" for r in reconstructions]), [f"u{k}" for k in range(n)], speakers)


def _wilson(k, n, z=1.959963984540054):
    p = k / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return [100 * (centre - half) / (1 + z * z / n), 100 * (centre + half) / (1 + z * z / n)]


def test_bona_fide_set_counts_false_alarms_by_hand():
    # p(bonafide) = sigmoid(score - 1): the verdict turns at score 1 (0.5 itself is bona fide, as racl-score has it)
    scores = [-2.0, 0.5, 1.0, 3.0, 0.9, 4.0, -1.0]
    speakers = ["a", "a", "a", "b", "b", "b", "b"]
    summary = summarize_one_class(_table(scores, 0, speakers), lambda s: 1 / (1 + math.exp(-(s - 1))), 1.0)
    rate = summary["labelled_spoof"]
    assert summary["one_class"] == "bonafide" and rate["n_other"] == 4 and rate["n_clips"] == 7
    assert rate["rate_percent"] == pytest.approx(400 / 7) and rate["ci95_percent"] == pytest.approx(_wilson(4, 7))
    assert summary["per_speaker"]["a"]["n_other"] == 2 and summary["per_speaker"]["b"]["n_other"] == 2
    assert summary["per_attack"] == {} and summary["per_reconstruction"] == {}  # one name each: nothing to break down
    assert summary["score_quantiles"]["p50"] == pytest.approx(np.median(scores))
    assert "false alarms" in summary["headline"]["name"] and summary["decision_score"] == 1.0


def test_with_a_familiarity_check_the_unfamiliar_share_and_the_unwarned_false_alarms_by_hand():
    table = _table([-2.0, -1.0, 3.0, -0.5], 0, ["a", "a", "b", "b"])
    table.familiarity = np.array([0.5, 0.01, 0.9, 0.02])  # threshold 0.1: clips 0 and 2 unfamiliar
    summary = summarize_one_class(table, lambda s: 1 / (1 + math.exp(-s)), 0.0, familiarity_threshold=0.1)
    rate = summary["labelled_spoof"]  # spoof: clips 0, 1, 3; of them 1 and 3 without the warning
    assert rate["n_other"] == 3 and rate["unfamiliar_percent"] == 50.0 and rate["other_and_familiar_percent"] == 50.0
    assert summary["per_speaker"]["a"]["other_and_familiar_percent"] == 50.0 and summary["per_speaker"]["b"]["unfamiliar_percent"] == 50.0
    assert "unfamiliar_percent" not in summarize_one_class(table, lambda s: 0.5, 0.0)["labelled_spoof"]  # no threshold: not reported


def test_spoof_set_counts_misses_per_attack_and_paradigm():
    table = _table([2.0, -3.0, 5.0, -1.0], 1, ["s"] * 4, attacks=["A", "A", "B", "B"], reconstructions=["none", "world", "none", "world"])
    summary = summarize_one_class(table, lambda s: 1 / (1 + math.exp(-s)), 0.0)
    assert summary["labelled_bonafide"]["n_other"] == 2 and "misses" in summary["headline"]["name"]
    assert {k: v["n_other"] for k, v in summary["per_attack"].items()} == {"A": 1, "B": 1}
    assert {k: v["n_other"] for k, v in summary["per_reconstruction"].items()} == {"none": 2, "world": 0}
    assert summary["per_speaker"] == {}


def test_summary_refuses_two_classes():
    table = _table([0.0, 1.0], 0, ["a", "a"])
    table.label[1] = 1
    with pytest.raises(ValueError, match="one class"):
        summarize_one_class(table, lambda s: 0.5, 0.0)


@pytest.fixture()
def own_speech(tiny_model_dir, write_wav, tmp_path):
    """A CSV corpus of real-speech stand-ins from two speakers, and a model copy calibrated so that its verdict
    turns at the median of their scores (so both verdicts occur)."""
    rows = ["path,label,speaker"]
    for k in range(6):
        write_wav(f"own/clips/c{k}.wav", seconds=0.6 + 0.1 * k, seed=k)
        rows.append(f"clips/c{k}.wav,bonafide,{'ab'[k % 2]}")
    (tmp_path / "own" / "metadata.csv").write_text("\n".join(rows) + "\n")
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    paths = [str(tmp_path / "own" / "clips" / f"c{k}.wav") for k in range(6)]
    scores = [r.score for r in Scorer.from_pretrained(str(model), device="cpu").score_files(paths)]
    config = json.loads((model / "config.json").read_text())
    config["calibration_scale"], config["calibration_bias"] = 1.0, -float(np.median(scores))
    (model / "config.json").write_text(json.dumps(config))
    return tmp_path / "own", model, paths


def test_cli_on_own_real_speech_agrees_with_racl_score(own_speech, tmp_path, capsys):
    corpus, model, paths = own_speech
    out = tmp_path / "out"
    code = main(["--model", str(model), "--corpus", "folder", "--root", str(corpus), "--out", str(out), "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    verdicts = [r.label for r in Scorer.from_pretrained(str(model), device="cpu").score_files(paths)]
    results = json.loads((out / "results.json").read_text())
    assert results["labelled_spoof"]["n_other"] == verdicts.count("spoof") == 3 and results["n_clips"] == 6
    assert set(results["per_speaker"]) == {"a", "b"} and sum(e["n_other"] for e in results["per_speaker"].values()) == 3
    assert (out / "score_hist.png").stat().st_size > 0 and len((out / "scores.txt").read_text().splitlines()) == 6
    assert "labelled spoof (false alarms): 50.0 %" in (out / "report.md").read_text()
    assert "labelled spoof (false alarms): 50.0 % (3 of 6" in captured.out


@pytest.mark.parametrize("extra, expected", [
    (["--update-card"], "clips of one class only, so no EER for --update-card to record"),
    (["--calibrate-on", "cal"], "only bona fide clips; calibration needs both classes"),
])
def test_cli_one_class_bad_input_one_line(own_speech, extra, expected, tmp_path, capsys):
    corpus, model, _ = own_speech
    if "--calibrate-on" in extra:  # a two-class set to score, a one-class split to calibrate on
        lines = (corpus / "metadata.csv").read_text().splitlines()
        rows = [lines[0] + ",split"] + [f"{line},cal" for line in lines[1:]] + ["clips/c0.wav,spoof,a,test", "clips/c1.wav,bonafide,b,test"]
        (corpus / "metadata.csv").write_text("\n".join(rows) + "\n")
        extra = [*extra, "--corpus-split", "test"]
    capsys.readouterr()
    code = main(["--model", str(model), "--corpus", "folder", "--root", str(corpus), "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "o").exists()  # refused before anything was scored or written
