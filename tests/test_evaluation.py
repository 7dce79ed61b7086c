"""racl-eval: dataset and corpus scoring, summaries against racl.metrics, reports, calibration, CLI."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import SR, speech_like

from racl.audio import decode_audio_cell
from racl.evaluation.calibration import fit_calibration
from racl.evaluation.cli import main
from racl.evaluation.corpus import score_corpus
from racl.evaluation.dataset import score_dataset
from racl.evaluation.model_folder import calibrate, update_model_card
from racl.evaluation.report import run_split_evaluation, write_report
from racl.evaluation.summary import read_asv_scores, summarize
from racl.evaluation.table import ScoreTable
from racl.metrics import compute_eer, compute_min_tdcf
from racl.scoring import Scorer

# (utt_id, label, source_id, reconstruction, attack, seconds): 3 bona fide, 2 attacks, 2 paradigms,
# reconstructions of bona fide and of spoof linked by source_id
TEST_ROWS = [
    ("b1", 0, "b1", "none", "-", 2.3),
    ("b2", 0, "b2", "none", "-", 0.7),
    ("b3", 0, "b3", "none", "-", 1.1),
    ("sA1", 1, "sA1", "none", "A", 1.4),
    ("sA2", 1, "sA2", "none", "A", 0.6),
    ("sB1", 1, "sB1", "none", "B", 0.9),
    ("rb1h", 1, "b1", "hifigan", "-", 2.3),
    ("rb2w", 1, "b2", "world", "-", 0.7),
    ("rsA1h", 1, "sA1", "hifigan", "A", 1.4),
]
VALIDATION_ROWS = [
    ("vb1", 0, "vb1", "none", "-", 0.8),
    ("vb2", 0, "vb2", "none", "-", 0.6),
    ("vsA", 1, "vsA", "none", "A", 0.7),
    ("vrb1", 1, "vb1", "hifigan", "-", 0.8),
]
TRAIN_ROWS = [
    ("tb1", 0, "tb1", "none", "-", 0.5),
    ("tsA", 1, "tsA", "none", "A", 0.5),
    ("trb1", 1, "tb1", "hifigan", "-", 0.5),
]


def make_split(rows, seed=0):
    from datasets import Dataset

    from datasets_scripts.schema import FEATURES

    columns = {name: [] for name in FEATURES}
    for k, (utt, label, source, recon, attack, seconds) in enumerate(rows):
        wave = speech_like(seconds, seed + k)
        columns["audio"].append({"array": wave, "sampling_rate": SR})
        columns["label"].append(label)
        columns["utt_id"].append(utt)
        columns["source_id"].append(source)
        columns["is_reconstructed"].append(recon != "none")
        columns["reconstruction"].append(recon)
        columns["attack"].append(attack)
        columns["speaker"].append("spk1")
        columns["corpus"].append("synthetic")
        columns["duration"].append(seconds)
    return Dataset.from_dict(columns, features=FEATURES)


@pytest.fixture(scope="module")
def test_split():
    return make_split(TEST_ROWS)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory, test_split):
    """A Parquet dataset folder (data/<split>-00000-of-00001.parquet) that load_dataset reads."""
    root = tmp_path_factory.mktemp("eval-data")
    for split, ds in (("test", test_split), ("validation", make_split(VALIDATION_ROWS)), ("train", make_split(TRAIN_ROWS))):
        ds.to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
    return root


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


@pytest.fixture(scope="module")
def scorer(tiny_model_dir):
    # 1 s windows, 0.5 s hop: the 2.3 s clips take several windows
    return Scorer.from_pretrained(str(tiny_model_dir), device="cpu", batch_size=4, window_seconds=1.0, hop_seconds=0.5)


@pytest.fixture(scope="module")
def test_table(scorer, test_split):
    return score_dataset(scorer, dataset=test_split, batch_size=4)


@pytest.fixture()
def model_copy(tiny_model_dir, tmp_path):
    import shutil

    return shutil.copytree(tiny_model_dir, tmp_path / "model")


def test_score_dataset_matches_scorer_and_keeps_order(scorer, test_table, test_split):
    ds = test_split
    assert test_table.utt_id == [r[0] for r in TEST_ROWS]
    assert test_table.label.tolist() == [r[1] for r in TEST_ROWS]
    assert test_table.source_id == [r[2] for r in TEST_ROWS] and test_table.attack == [r[4] for r in TEST_ROWS]
    assert test_table.is_reconstructed.tolist() == [r[3] != "none" for r in TEST_ROWS]
    assert np.isfinite(test_table.score).all() and test_table.unreadable == []
    waves = [decode_audio_cell(ds[i]["audio"]) for i in range(len(ds))]
    reference = [r.score for r in scorer.score_waveforms(waves)]
    np.testing.assert_allclose(test_table.score, reference, atol=1e-4)


def test_embeddings_are_the_mean_of_window_embeddings(scorer, test_table):
    from racl.scoring import window_spans

    assert test_table.embeddings.shape[0] == len(TEST_ROWS) and np.isfinite(test_table.embeddings).all()
    wave = speech_like(2.3, 0)  # row b1, four windows
    windows = [wave[s:e] for s, e in window_spans(len(wave), scorer.window, scorer.hop)]
    assert len(windows) > 1
    with torch.inference_mode():
        batch = scorer.extractor(windows, sampling_rate=SR, padding=True, return_attention_mask=True, return_tensors="pt")
        expected = scorer.model(batch["input_values"], attention_mask=batch["attention_mask"]).embeddings.mean(0).numpy()
    np.testing.assert_allclose(test_table.embeddings[0], expected, atol=1e-4)


def test_score_dataset_from_a_bare_model_in_training_mode(scorer, test_table, test_split):
    model = scorer.model.train()
    try:
        table = score_dataset(model, scorer.extractor, test_split.select(range(4)), batch_size=4, window_seconds=1.0, hop_seconds=0.5, return_embeddings=False)
        assert model.training  # handed back in the caller's mode
    finally:
        model.eval()
    assert table.embeddings is None
    np.testing.assert_allclose(table.score, test_table.score[:4], atol=1e-4)


def test_score_dataset_with_an_accelerator(scorer, test_table, test_split):
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    model = accelerator.prepare(scorer.model)
    table = score_dataset(model, scorer.extractor, test_split, batch_size=3, window_seconds=1.0, hop_seconds=0.5, accelerator=accelerator)
    assert table.utt_id == test_table.utt_id
    np.testing.assert_allclose(table.score, test_table.score, atol=1e-4)


def test_summarize_equals_metrics(test_table):
    s, y = test_table.score, test_table.label
    summary = summarize(test_table)
    assert summary["eer"] == pytest.approx(compute_eer(s, y)[0]) and summary["eer_percent"] == pytest.approx(100 * summary["eer"])
    bona = y == 0
    ids = np.array(test_table.utt_id)
    for attack, members in {"A": ["sA1", "sA2"], "B": ["sB1"]}.items():
        keep = bona | np.isin(ids, members)
        assert summary["per_attack"][attack]["eer"] == pytest.approx(compute_eer(s[keep], y[keep])[0])
    for paradigm, members in {"hifigan": ["rb1h", "rsA1h"], "world": ["rb2w"]}.items():
        keep = bona | np.isin(ids, members)
        assert summary["per_reconstruction"][paradigm]["eer"] == pytest.approx(compute_eer(s[keep], y[keep])[0])
    # The same paradigm apart by source: rb1h reconstructs bona fide b1, rsA1h the spoof sA1.
    by_source = {"hifigan of bona fide": ["rb1h"], "hifigan of spoof": ["rsA1h"], "world of bona fide": ["rb2w"]}
    assert set(summary["per_reconstruction_source"]) == set(by_source)
    for group, members in by_source.items():
        keep = bona | np.isin(ids, members)
        assert summary["per_reconstruction_source"][group]["eer"] == pytest.approx(compute_eer(s[keep], y[keep])[0])
    originals = bona | np.isin(ids, ["sA1", "sA2", "sB1"])  # original spoofs only, no reconstructions
    assert summary["originals"]["eer"] == pytest.approx(compute_eer(s[originals], y[originals])[0])
    assert summary["originals"]["n_spoof"] == 3
    assert summary["seen"] is None and summary["headline"]["name"] == "EER pooled"
    assert (summary["n_clips"], summary["n_bonafide"], summary["n_spoof"]) == (9, 3, 6)


def test_summarize_seen_and_unseen_systems(test_table):
    s, y, ids = test_table.score, test_table.label, np.array(test_table.utt_id)
    summary = summarize(test_table, seen_attacks={"A"}, seen_paradigms={"hifigan"})
    bona = y == 0
    seen = bona | np.isin(ids, ["sA1", "sA2", "rb1h", "rsA1h"])  # A, hifigan of bona fide, hifigan of A
    unseen = bona | np.isin(ids, ["sB1", "rb2w"])  # attack B, paradigm world
    assert summary["seen"]["eer"] == pytest.approx(compute_eer(s[seen], y[seen])[0])
    assert summary["unseen"]["eer"] == pytest.approx(compute_eer(s[unseen], y[unseen])[0])
    assert summary["unseen"]["n_spoof"] == 2 and summary["headline"]["name"] == "EER on unseen systems"
    assert summary["per_attack"]["B"]["seen"] is False and summary["per_reconstruction"]["hifigan"]["seen"] is True
    assert summary["per_reconstruction_source"]["hifigan of spoof"]["seen"] is True
    assert summary["per_reconstruction_source"]["world of bona fide"]["seen"] is False
    only_attacks = summarize(test_table, seen_attacks={"A", "B"})
    assert only_attacks["unseen"] is None and only_attacks["headline"]["name"] == "EER pooled"


def test_summarize_min_tdcf_from_an_asv_score_file(test_table, tmp_path):
    rng = np.random.default_rng(0)
    keys = ["target"] * 20 + ["nontarget"] * 20 + ["spoof"] * 20
    asv = np.concatenate([rng.normal(3, 1, 20), rng.normal(-3, 1, 20), rng.normal(0, 1, 20)])
    sources = ["bonafide"] * 40 + ["A07"] * 20
    path = tmp_path / "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt"
    path.write_text("".join(f"{src} {k} {v:.6f}\n" for src, k, v in zip(sources, keys, asv)))
    read_scores, read_keys = read_asv_scores(path)
    assert read_keys.tolist() == keys and np.allclose(read_scores, asv, atol=1e-6)
    summary = summarize(test_table, asv_scores=str(path))
    assert summary["min_tdcf"] == pytest.approx(compute_min_tdcf(test_table.score, test_table.label, read_scores, read_keys)[0])
    six_columns = tmp_path / "six.txt"  # SPEAKER UTT ... KEY SCORE, the later ASVspoof layout
    six_columns.write_text("".join(f"LA_0001 LA_E_{i} - {src} {k} {v:.6f}\n" for i, (src, k, v) in enumerate(zip(sources, keys, asv))))
    assert read_asv_scores(six_columns)[1].tolist() == keys
    (tmp_path / "bad.txt").write_text("LA_0001 maybe 1.0\n")
    with pytest.raises(ValueError, match="line 1"):
        read_asv_scores(tmp_path / "bad.txt")


def test_summarize_refuses_one_class(test_table):
    keep = test_table.label == 1
    table = ScoreTable([u for u, k in zip(test_table.utt_id, keep) if k], test_table.score[keep], test_table.label[keep],
                       [], [], test_table.is_reconstructed[keep], [], [])
    with pytest.raises(ValueError, match="bona fide and spoof"):
        summarize(table)


def test_embedding_kinds_follow_the_source_label(test_table):
    kinds = dict(zip(test_table.utt_id, test_table.kinds()))
    assert kinds["b1"] == "bonafide original" and kinds["sA1"] == "spoof original"
    assert kinds["rb1h"] == kinds["rb2w"] == "bonafide reconstructed" and kinds["rsA1h"] == "spoof reconstructed"


def test_write_report(test_table, tmp_path):
    summary = summarize(test_table, seen_attacks={"A"}, seen_paradigms={"hifigan"})
    paths = write_report(test_table, summary, tmp_path / "report", calibration={"scale": 2.0, "bias": 0.1, "split": "validation"})
    for name in ("scores.txt", "results.json", "report.md", "det.png", "score_hist.png", "embeddings.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0, name
    lines = paths["scores"].read_text().splitlines()
    assert [line.split()[0] for line in lines] == test_table.utt_id
    assert np.allclose([float(line.split()[1]) for line in lines], test_table.score, atol=1e-5)
    results = json.loads(paths["results"].read_text())
    assert results["eer"] == pytest.approx(summary["eer"]) and results["calibration"]["scale"] == 2.0
    report = paths["report"].read_text()
    assert "EER on unseen systems" in report and "| world |" in report and "embeddings.png" in report


def test_run_split_evaluation(scorer, test_split):
    summary = run_split_evaluation(scorer, None, test_split.select(range(6)), seen_attacks={"A"})  # report: test_write_report
    assert summary["unseen"]["n_spoof"] == 1 and summary["headline"]["name"] == "EER on unseen systems"
    json.dumps(summary)  # plain types: the training summary is written as JSON


def test_calibration_recovers_a_known_logistic_that_the_model_then_applies(tiny_model):
    rng = np.random.default_rng(0)
    scores = rng.normal(0, 2, 20_000)
    p_bona = 1 / (1 + np.exp(-(1.5 * scores - 0.5)))
    labels = np.where(rng.random(scores.size) < p_bona, 0, 1)
    scale, bias = fit_calibration(scores, labels)
    assert scale == pytest.approx(1.5, abs=0.08) and bias == pytest.approx(-0.5, abs=0.08)
    # the fit has no probability of its own: the model's bonafide_probability is the one definition
    tiny_model.config.calibration_scale, tiny_model.config.calibration_bias = scale, bias
    p = tiny_model.bonafide_probability(torch.tensor([-1e4, 0.0, 1e4], dtype=torch.float64))
    assert p[0] == 0.0 and p[2] == 1.0 and p[1] == pytest.approx(1 / (1 + np.exp(-bias)))  # stable on extreme scores
    with pytest.raises(ValueError, match="bona fide and spoof"):
        fit_calibration([0.1, 0.2], [1, 1])


def test_calibrate_writes_the_config(test_table, model_copy):
    from transformers import AutoConfig, AutoModelForAudioClassification

    scale, bias = calibrate(model_copy, test_table)
    config = json.loads((model_copy / "config.json").read_text())
    assert (config["calibration_scale"], config["calibration_bias"]) == pytest.approx((scale, bias))
    assert "AutoModelForAudioClassification" in config["auto_map"]
    model = AutoModelForAudioClassification.from_pretrained(str(model_copy), trust_remote_code=True)
    assert (model.config.calibration_scale, model.config.calibration_bias) == pytest.approx((scale, bias))
    assert AutoConfig.from_pretrained(str(model_copy), trust_remote_code=True).calibration_scale == pytest.approx(scale)


def test_update_model_card_keeps_earlier_results(model_copy):
    update_model_card(model_copy, {"set one": {"eer": 0.1}})
    readme = update_model_card(model_copy, {"set two": {"eer": 0.2, "min_tdcf": 0.3}}).read_text()
    assert "model-index" in readme and "set one" in readme and "set two" in readme and "20.00" in readme


def test_cli_on_a_dataset_folder(dataset_dir, model_copy, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["--model", str(model_copy), "--data", str(dataset_dir), "--calibrate-on", "validation", "--out", str(out), "--update-card", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["n_clips"] == len(TEST_ROWS) and results["seen_attacks"] == ["A"]  # from the train split
    assert results["unseen"]["n_spoof"] == 2  # attack B and paradigm world
    assert len((out / "scores.txt").read_text().splitlines()) == len(TEST_ROWS)
    config = json.loads((model_copy / "config.json").read_text())
    assert config["calibration_scale"] == pytest.approx(results["calibration"]["scale"])
    assert "unseen systems" in (model_copy / "README.md").read_text()
    assert "EER pooled" in capsys.readouterr().out


def test_cli_on_a_folder_corpus_with_an_unreadable_file(tiny_model_dir, write_wav, tmp_path, capsys):
    corpus = tmp_path / "corpus"
    for k in range(2):
        write_wav(f"corpus/bonafide/b{k}.wav", seconds=0.7, seed=k)
        write_wav(f"corpus/spoof/tts1/s{k}.wav", seconds=0.6, seed=10 + k)
    write_wav("corpus/spoof/tts2/s0.wav", seconds=0.8, seed=20)
    (corpus / "spoof" / "tts2" / "broken.wav").write_bytes(b"RIFF not really")
    out = tmp_path / "out"
    code = main(["--model", str(tiny_model_dir), "--corpus", "folder", "--root", str(corpus), "--out", str(out), "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert [line for line in captured.err.splitlines() if "broken.wav" in line] and "Traceback" not in captured.err
    results = json.loads((out / "results.json").read_text())
    assert results["n_clips"] == 5 and results["n_unreadable"] == 1 and set(results["per_attack"]) == {"tts1", "tts2"}
    assert len((out / "scores.txt").read_text().splitlines()) == 5


def test_score_corpus_lists_unreadable_files(scorer, write_wav, tmp_path):
    write_wav("c/bonafide/b.wav", seconds=0.5)
    write_wav("c/spoof/x/s.wav", seconds=0.5, seed=3)
    (tmp_path / "c" / "spoof" / "x" / "empty.wav").write_bytes(b"")
    table = score_corpus(scorer, "folder", str(tmp_path / "c"))
    assert table.utt_id == ["bonafide-b", "spoof-x-s"] and table.attack == ["-", "x"]
    assert [u for u, _ in table.unreadable] == ["spoof-x-empty"]


def test_cli_on_a_spoof_only_split_reports_misses_per_attack(tiny_model_dir, tmp_path, capsys):
    make_split([r for r in TEST_ROWS if r[1] == 1]).to_parquet(str(tmp_path / "spoofs" / "data" / "test-00000-of-00001.parquet"))
    out = tmp_path / "out"
    code = main(["--model", str(tiny_model_dir), "--data", str(tmp_path / "spoofs"), "--out", str(out), "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    scorer = Scorer.from_pretrained(str(tiny_model_dir), device="cpu")
    expected = sum(scorer.probability(s) >= 0.5 for s in map(float, np.loadtxt(out / "scores.txt", usecols=1)))
    assert results["one_class"] == "spoof" and results["labelled_bonafide"]["n_other"] == expected
    assert set(results["per_attack"]) == {"-", "A", "B"} and set(results["per_reconstruction"]) == {"none", "hifigan", "world"}
    assert "misses" in (out / "report.md").read_text()


def _one_class_folder(tmp_path):
    folder = tmp_path / "only" / "bonafide"
    folder.mkdir(parents=True)
    sf.write(str(folder / "a.wav"), speech_like(0.5), SR)
    return folder.parent


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing-dir", "no such dataset folder"),
        ("unknown-corpus", "unknown corpus"),
        ("unknown-split", "no split 'nope'"),
        ("missing-column", "no 'label' column"),
        ("one-class-card", "split 'test': clips of one class only, so no EER for --update-card to record"),
        ("one-class-corpus-card", "clips of one class only, so no EER for --update-card to record"),
        ("missing-model", "cannot load model"),
    ],
)
def test_cli_bad_input_one_line_exit_2(case, expected, dataset_dir, tiny_model_dir, tmp_path, capsys):
    model = str(tiny_model_dir)
    args = {
        "missing-dir": ["--data", str(tmp_path / "nowhere")],
        "unknown-corpus": ["--corpus", "nosuch", "--root", str(tmp_path)],
        "unknown-split": ["--data", str(dataset_dir), "--split", "nope"],
        "missing-column": ["--data", str(dataset_dir)],
        "one-class-card": ["--data", str(dataset_dir)],
        "one-class-corpus-card": ["--corpus", "folder", "--root", str(_one_class_folder(tmp_path)), "--update-card"],
        "missing-model": ["--data", str(dataset_dir)],
    }[case]
    if case in ("missing-column", "one-class-card"):
        rows = VALIDATION_ROWS if case == "missing-column" else [r for r in TEST_ROWS if r[1] == 0]
        ds = make_split(rows)
        ds = ds.remove_columns("label") if case == "missing-column" else ds
        ds.to_parquet(str(tmp_path / "bad" / "data" / "test-00000-of-00001.parquet"))
        args = ["--data", str(tmp_path / "bad")] + (["--update-card"] if case == "one-class-card" else [])
    if case == "missing-model":
        model = str(tmp_path / "no-model")
    capsys.readouterr()  # only what main writes
    code = main(["--model", model, *args, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("racl-eval: ") and expected in err[0], err


MULTI_PROCESS_SCRIPT = """
import json, sys
import torch
from accelerate import Accelerator
from datasets import load_dataset
from racl.evaluation.dataset import score_dataset
from racl.scoring import load_detector

torch.set_num_threads(1)
accelerator = Accelerator(cpu=True)
model, extractor = load_detector(sys.argv[1], device="cpu")
split = load_dataset(sys.argv[2], split="test", cache_dir=sys.argv[4])
table = score_dataset(accelerator.prepare(model), extractor, split, batch_size=2, window_seconds=1.0, hop_seconds=0.5,
                      accelerator=accelerator)
if accelerator.is_main_process:
    json.dump({"n": accelerator.num_processes, "utt_id": table.utt_id, "score": table.score.tolist(),
               "embeddings": table.embeddings.shape[0]}, open(sys.argv[3], "w"))
accelerator.end_training()  # tear the gloo group down before exit (else a rank may abort at teardown)
"""


@pytest.mark.slow
def test_score_dataset_on_two_processes(tiny_model_dir, dataset_dir, test_table, tmp_path):
    import os
    import subprocess
    import sys

    script, out = tmp_path / "score.py", tmp_path / "scores.json"
    script.write_text(MULTI_PROCESS_SCRIPT)
    # torchrun sets the world size; Accelerator(cpu=True) then runs multi-CPU over gloo
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
              str(script), str(tiny_model_dir), str(dataset_dir), str(out), str(tmp_path / "cache")]
    result = subprocess.run(launch, capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(out.read_text())
    assert got["n"] == 2 and got["utt_id"] == test_table.utt_id and got["embeddings"] == len(TEST_ROWS)
    np.testing.assert_allclose(got["score"], test_table.score, atol=1e-4)


def test_cli_on_asvspoof2019_takes_the_corpus_asv_scores_for_min_tdcf(tiny_model_dir, write_wav, tmp_path, capsys):
    la = tmp_path / "LA"
    rows = [("LA_0039", "LA_E_1", "-", "bonafide"), ("LA_0039", "LA_E_2", "-", "bonafide"),
            ("LA_0040", "LA_E_3", "A11", "spoof"), ("LA_0040", "LA_E_4", "A12", "spoof")]
    (la / "ASVspoof2019_LA_cm_protocols").mkdir(parents=True)
    (la / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.eval.trl.txt").write_text(
        "".join(f"{spk} {utt} - {system} {key}\n" for spk, utt, system, key in rows))
    for k, (_, utt, _, _) in enumerate(rows):
        write_wav(f"LA/ASVspoof2019_LA_eval/flac/{utt}.wav", seconds=0.6, seed=k)
        (la / "ASVspoof2019_LA_eval" / "flac" / f"{utt}.wav").rename(la / "ASVspoof2019_LA_eval" / "flac" / f"{utt}.flac")
    rng = np.random.default_rng(0)
    asv = [("bonafide", "target", rng.normal(3)) for _ in range(20)] + [("bonafide", "nontarget", rng.normal(-1)) for _ in range(20)]
    asv += [("A11", "spoof", rng.normal(2)) for _ in range(20)]  # spoofs the ASV lets through: the CM matters
    (la / "ASVspoof2019_LA_asv_scores").mkdir()
    (la / "ASVspoof2019_LA_asv_scores" / "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt").write_text(
        "".join(f"{src} {key} {score:.4f}\n" for src, key, score in asv))
    out = tmp_path / "out"
    code = main(["--model", str(tiny_model_dir), "--corpus", "asvspoof2019_la", "--root", str(la), "--corpus-split", "eval",
                 "--out", str(out), "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["n_clips"] == 4 and results["min_tdcf"] is not None
