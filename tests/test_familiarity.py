"""The familiarity check: nearest-neighbour numerics by hand, fitting on a dataset, the model output, a fresh-process
reload, and what racl-score and the Space make of it."""

import json

import numpy as np
import pytest
import torch

from conftest import run_python, speech_like

from modeling_racl import RACLConfig, RACLForAudioClassification, fitted_threshold, neighbour_distances
from racl.evaluation.familiarity import fit_familiarity, main, pooled_windows
from racl.scoring import Scorer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_distances_and_threshold_by_hand():
    rng = np.random.default_rng(0)
    reference, queries = _unit(rng.normal(size=(9, 4))), _unit(rng.normal(size=(3, 4)))
    k = 3
    expected = [1 - np.sort(reference @ q)[-k:].mean() for q in queries]
    got = neighbour_distances(torch.tensor(queries), torch.tensor(reference), k)
    assert got.numpy() == pytest.approx(expected, abs=1e-6)
    own = []
    for i in range(len(reference)):  # each reference row to the others only
        others = np.delete(reference, i, axis=0)
        own.append(1 - np.sort(others @ reference[i])[-k:].mean())
    got_own = neighbour_distances(torch.tensor(reference), torch.tensor(reference), k, leave_one_out=True)
    assert got_own.numpy() == pytest.approx(own, abs=1e-6)
    assert fitted_threshold(torch.tensor(reference), k, 0.9) == pytest.approx(np.quantile(own, 0.9), abs=1e-6)
    with pytest.raises(ValueError, match="at least two"):
        neighbour_distances(torch.tensor(reference[:1]), torch.tensor(reference[:1]), k, leave_one_out=True)


@pytest.fixture()
def fitted(tiny_model, tiny_dataset_dir):
    import datasets

    from racl.export import default_feature_extractor

    extractor = default_feature_extractor(tiny_model.config)
    split = datasets.load_dataset(str(tiny_dataset_dir))["train"]
    info = fit_familiarity(tiny_model, extractor, split, layer=1, max_reference=10, quantile=0.9)
    return tiny_model.eval(), extractor, split, info


def test_fit_stores_reference_and_threshold_and_the_model_outputs_distances(fitted):
    model, extractor, split, info = fitted
    assert info["reference_windows"] == model.config.familiarity_reference_size == 10 and info["layer"] == 1
    assert model.familiarity.reference.shape == (10, model.frontend.feature_dim)
    assert torch.linalg.vector_norm(model.familiarity.reference, dim=1) == pytest.approx(torch.ones(10), abs=1e-5)
    assert model.config.familiarity_threshold == pytest.approx(
        fitted_threshold(model.familiarity.reference, model.config.familiarity_neighbours, 0.9))
    waves = [speech_like(0.7, seed=s) for s in (1, 2)]
    batch = extractor(waves, sampling_rate=16000, padding=True, return_attention_mask=True, return_tensors="pt")
    with torch.no_grad():
        out = model(batch["input_values"], attention_mask=batch["attention_mask"])
    by_hand = neighbour_distances(pooled_windows(model, extractor, waves, 1), model.familiarity.reference, model.config.familiarity_neighbours)
    assert out.familiarity.shape == (2,) and out.familiarity == pytest.approx(by_hand, abs=1e-5)


def test_a_fitted_model_reloads_in_a_fresh_process_with_the_same_distances(fitted, tmp_path):
    from racl.export import export_model_folder

    model, extractor, _, _ = fitted
    folder = export_model_folder(model, tmp_path / "model", extractor)
    wave = speech_like(0.9, seed=5)
    with torch.no_grad():
        expected = model(torch.tensor(wave)[None]).familiarity.item()
    code = f"""
import json, numpy as np, torch
from transformers import AutoModelForAudioClassification
from conftest import speech_like
model = AutoModelForAudioClassification.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
with torch.no_grad():
    print(json.dumps(model(torch.tensor(speech_like(0.9, seed=5))[None]).familiarity.item()))
"""
    proc = run_python(code, env={"PYTHONPATH": str(__import__("conftest").ROOT / "tests")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == pytest.approx(expected, abs=1e-6)


def test_scorer_reports_each_clips_mean_window_distance_and_verdict_on_it(fitted, tmp_path):
    model, extractor, split, _ = fitted
    scorer = Scorer(model, extractor, batch_size=2, window_seconds=0.4, hop_seconds=0.2)
    waves = [speech_like(1.0, seed=7), np.random.default_rng(0).normal(0, 0.3, 16000).astype(np.float32)]
    results = scorer.score_waveforms(waves)
    for wave, result in zip(waves, results):
        pieces = [wave[s:e] for s, e in [(int(w.start * 16000), int(w.end * 16000)) for w in result.windows]]
        by_hand = neighbour_distances(pooled_windows(model, extractor, pieces, 1), model.familiarity.reference, model.config.familiarity_neighbours)
        assert [w.familiarity for w in result.windows] == pytest.approx(by_hand.tolist(), abs=1e-5)
        assert result.familiarity == pytest.approx(float(by_hand.mean()), abs=1e-5)
        assert result.familiar == (result.familiarity <= model.config.familiarity_threshold)
    model.config.familiarity_threshold = -1.0  # nothing is familiar now: the flag follows the threshold
    assert [r.familiar for r in scorer.score_waveforms(waves)] == [False, False]


def test_without_a_fitted_check_nothing_changes(tiny_model):
    scorer = Scorer(tiny_model.eval(), __import__("racl.export", fromlist=["x"]).default_feature_extractor(tiny_model.config))
    result = scorer.score_waveform(speech_like(1.0))
    assert result.familiarity is None and result.familiar is None and all(w.familiarity is None for w in result.windows)


def test_cli_fits_a_folder_and_reports_a_held_out_split(tiny_model_dir, tiny_dataset_dir, tmp_path, capsys):
    out = tmp_path / "fitted"
    code = main(["--model", str(tiny_model_dir), "--data", str(tiny_dataset_dir), "--layer", "2", "--max-reference", "8",
                 "--check-split", "validation", "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    config = json.loads((out / "config.json").read_text())
    assert config["familiarity_layer"] == 2 and config["familiarity_reference_size"] == 8 and config["familiarity_threshold"] > 0
    assert "% of its windows unfamiliar" in printed.out and (out / "README.md").exists()  # the rest of the folder kept
    from racl.export import model_card
    from modeling_racl import RACLConfig as Config

    assert "familiarity check (hidden state 2 of its encoder against\n  8 training windows)" in model_card(Config.from_pretrained(str(out)))
    assert json.loads((tiny_model_dir / "config.json").read_text()).get("familiarity_reference_size", 0) == 0  # source untouched
    import soundfile as sf

    from racl.scoring import main as racl_score

    sf.write(str(tmp_path / "a.wav"), speech_like(1.0), 16000)
    expected = Scorer.from_pretrained(str(out), device="cpu").score_file(str(tmp_path / "a.wav")).familiar
    assert expected in (True, False)
    capsys.readouterr()
    assert racl_score(["--model", str(out), "--format", "csv", str(tmp_path / "a.wav")]) == 0
    header, row = capsys.readouterr().out.strip().splitlines()
    assert dict(zip(header.split(","), row.split(",")))["familiar"] == ("yes" if expected else "no")
    from racl.evaluation.cli import main as racl_eval  # a folder of one class: the report counts the flags too

    (tmp_path / "own" / "bonafide").mkdir(parents=True)
    for k in range(3):
        sf.write(str(tmp_path / "own" / "bonafide" / f"c{k}.wav"), speech_like(0.8, seed=k), 16000)
    assert racl_eval(["--model", str(out), "--corpus", "folder", "--root", str(tmp_path / "own"), "--out", str(tmp_path / "rep")]) == 0
    flags = [r.familiar for r in Scorer.from_pretrained(str(out), device="cpu").score_files(sorted(map(str, (tmp_path / "own" / "bonafide").glob("*.wav"))))]
    results = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert results["labelled_spoof"]["unfamiliar_percent"] == pytest.approx(100 * flags.count(False) / 3)


@pytest.mark.parametrize("args, expected", [
    (["--layer", "9"], "the backbone has hidden states 0..2"),
    ([], "which backbone layer the check reads"),
    (["--layer", "1", "--split", "nope"], "no split 'nope'"),
    (["--layer", "1", "--quantile", "1.5"], "--quantile must be in (0, 1]"),
])
def test_cli_bad_input_one_line(tiny_model_dir, tiny_dataset_dir, tmp_path, capsys, args, expected):
    code = main(["--model", str(tiny_model_dir), "--data", str(tiny_dataset_dir), "--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "o").exists()


def test_a_front_end_without_hidden_states_cannot_have_the_check():
    with pytest.raises(ValueError, match="familiarity_layer reads backbone hidden states"):
        RACLConfig(frontend="filterbank", familiarity_layer=1)
    model = RACLForAudioClassification(RACLConfig(frontend="filterbank"))
    with pytest.raises(ValueError, match="familiarity_layer is not set"):
        model.set_familiarity(torch.zeros(2, 4), 0.1)
