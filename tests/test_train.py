"""racl.training (and train_racl.py over it): config strictness, data checks, resume, the seed loop,
multi-process run, reloadable best model, the last-step selection."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT, make_tiny_dataset

from racl.training.config import ConfigError, load_train_config

TRAIN = [sys.executable, "-m", "racl.training", "--config", str(ROOT / "configs" / "tiny.yaml")]
FAST = ["augment={}", "training.report_to=none", "training.calibrate=false", "training.evaluate_test=false"]


def run_train(args, timeout=600, **kw):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([*TRAIN, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env, **kw)


# ------------------------------------------------------------------ config and data errors


def test_unknown_key_and_wrong_type_fail_with_the_key_name(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  max_step: 10\n")
    with pytest.raises(ConfigError, match="training.max_step"):
        load_train_config(bad)
    with pytest.raises(ConfigError, match="training.max_steps"):
        load_train_config(ROOT / "configs" / "tiny.yaml", ["training.max_steps=ten"])
    with pytest.raises(ConfigError, match="data.sampler"):
        load_train_config(ROOT / "configs" / "tiny.yaml", ["data.sampler=balanced"])
    with pytest.raises(ConfigError, match="augment"):
        load_train_config(ROOT / "configs" / "tiny.yaml", ["augment.rawboost_probability=1"])
    proc = run_train(["training.max_stepz=3"])
    assert proc.returncode == 2 and "training.max_stepz" in proc.stderr and "Traceback" not in proc.stderr
    script = subprocess.run([sys.executable, str(ROOT / "train_racl.py"), "--config", str(ROOT / "configs" / "tiny.yaml"), "training.max_stepz=3"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)  # the top-level script is the same CLI
    assert (script.returncode, script.stderr) == (proc.returncode, proc.stderr)


def test_overrides_are_typed_and_nested():
    cfg = load_train_config(ROOT / "configs" / "tiny.yaml", ["training.max_steps=7", "model.overrides.aggregation=gated", "training.lr_head=1"])
    assert cfg.training.max_steps == 7 and cfg.model.overrides == {"aggregation": "gated"} and cfg.training.lr_head == 1.0
    assert load_train_config(ROOT / "configs" / "tiny.yaml", ["data.reconstructions=[world]"]).data.reconstructions == ["world"]


def test_training_rows_keep_paradigms_and_leave_out_spoof_systems_with_their_reconstructions(tmp_path, tiny_dataset_dir):
    from racl.training.data import load_splits, training_rows

    def selected(*overrides):
        cfg = load_train_config(ROOT / "configs" / "tiny.yaml", [f"data.path={tiny_dataset_dir}", *overrides])
        return training_rows(load_splits(cfg)[0], cfg)

    whole = selected()
    assert len(whole) == 24 and set(whole["attack"]) == {"-", "A01", "A02"}
    kept = selected("data.exclude_attacks=[A01]")
    gone = {u for u, a, r in zip(whole["utt_id"], whole["attack"], whole["is_reconstructed"]) if a == "A01" and not r}
    assert len(gone) == 3 and not gone & set(kept["source_id"])  # the clips and their reconstructions
    assert len(kept) == len(whole) - 2 * len(gone) and set(kept["attack"]) == {"-", "A02"}
    assert kept["utt_id"] == [u for u, s in zip(whole["utt_id"], whole["source_id"]) if s not in gone]  # order kept
    assert set(selected("data.use_reconstructions=false")["reconstruction"]) == {"none"}
    for overrides, message in [(["data.exclude_attacks=[A09]"], "no spoof system A09 in the train split .* \\(it has: A01, A02\\)"),
                               (["data.reconstructions=[world]"], "no world reconstructions in the train split .* \\(it has: smooth\\)"),
                               (["data.use_reconstructions=false", "data.exclude_attacks=[A01,A02]"], "holds one class only")]:
        with pytest.raises(ConfigError, match=message):
            selected(*overrides)
    proc = run_train([f"data.path={tiny_dataset_dir}", f"training.output_dir={tmp_path / 'run'}", "data.exclude_attacks=[A09]", *FAST])
    assert proc.returncode == 2 and "no spoof system A09" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]


def _dataset_variant(tmp_path, mutate):
    import datasets

    folder = make_tiny_dataset(tmp_path / "ds", clips_per_speaker=2, seconds=0.4)
    for split_file in (folder / "data").glob("*.parquet"):
        ds = datasets.Dataset.from_parquet(str(split_file))
        ds = mutate(split_file.name.split("-")[0], ds)
        split_file.unlink()
        ds.to_parquet(str(split_file))
    return folder


@pytest.mark.parametrize(
    "mutate,expected",
    [
        (lambda split, ds: ds.select([]) if split == "validation" else ds, "is empty"),
        (lambda split, ds: ds.remove_columns("source_id"), "lacks column"),
        (lambda split, ds: ds.filter(lambda r: not r, input_columns="is_reconstructed"), "no reconstructed rows but racl_beta"),
    ],
    ids=["empty-split", "missing-column", "no-reconstructions"],
)
def test_unusable_datasets_give_one_clear_error(tmp_path, mutate, expected):
    folder = _dataset_variant(tmp_path, mutate)
    proc = run_train([f"data.path={folder}", f"training.output_dir={tmp_path / 'run'}", *FAST])
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_damaged_training_clip_stops_with_its_name_keeping_the_checkpoints(tmp_path):
    import datasets

    def poison(split, ds):
        if split != "train":
            return ds
        rows = ds.to_list()
        for row in rows:  # every spoof original of speaker s3 carries NaN samples
            if row["speaker"] == "s3" and row["label"] == 1 and not row["is_reconstructed"]:
                bad = np.full(6400, np.nan, dtype=np.float32)
                path = tmp_path / f"{row['utt_id']}.wav"
                sf.write(str(path), bad, 16000, subtype="FLOAT")
                row["audio"] = {"bytes": path.read_bytes(), "path": None}
        return datasets.Dataset.from_list(rows, features=ds.features)

    folder = _dataset_variant(tmp_path, poison)
    proc = run_train([f"data.path={folder}", f"training.output_dir={tmp_path / 'run'}", "training.save_every_steps=1",
                      "training.eval_every_steps=100", "training.max_steps=12", *FAST])
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert "train-s3-1: 6400 NaN/Inf samples" in proc.stderr and "last good checkpoint is kept" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list((tmp_path / "run" / "checkpoints").glob("partial-*"))  # only whole checkpoints are left


def test_non_finite_loss_stops_with_step_and_utt_ids_keeping_last_good_checkpoint(tmp_path, tiny_dataset_dir):
    exploding = ["training.lr_head=1.0e+30", "training.lr_backbone=1.0e+30", "training.max_grad_norm=0"]
    proc = run_train([f"data.path={tiny_dataset_dir}", f"training.output_dir={tmp_path / 'run'}", "training.save_every_steps=1",
                      "training.eval_every_steps=100", "training.max_steps=12", *FAST, *exploding])
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert "non-finite loss" in proc.stderr and "at step" in proc.stderr and "batch utt_ids: ['train-" in proc.stderr
    step = int(proc.stderr.split("at step ")[1].split(";")[0])
    kept = sorted(int(p.name.split("-")[1]) for p in (tmp_path / "run" / "checkpoints").glob("step-*"))
    assert (kept == [] and step == 0) or kept[-1] == step  # the checkpoint before the bad step survives


def test_seed_loop_is_seed_major_and_skips_finished_runs(tmp_path):
    from racl.training.seeds import run_seeds, seed_dir

    done = []

    def run(key, seed, out):
        done.append((key, seed))
        out.mkdir(parents=True)
        (out / "summary.json").write_text(json.dumps({"key": key, "seed": seed}))

    bases = {"a": tmp_path / "a", "b": tmp_path / "b"}
    seed_dir(bases["b"], 0).mkdir(parents=True)
    (seed_dir(bases["b"], 0) / "summary.json").write_text(json.dumps({"earlier": True}))
    after = []
    summaries = run_seeds([0, 1], bases, run, skip_finished=True, after_each=lambda key, seed: after.append((key, seed)))
    assert done == [("a", 0), ("a", 1), ("b", 1)]  # every run with seed 0 first; b's finished seed 0 is not rerun
    assert after == [("a", 0), ("b", 0), ("a", 1), ("b", 1)]
    assert summaries["b"] == {0: {"earlier": True}, 1: {"key": "b", "seed": 1}}
    assert seed_dir(bases["a"], 1) == tmp_path / "a" / "seed-1"


# ------------------------------------------------------------------ runs


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_dataset_dir):
    out = tmp_path_factory.mktemp("run")
    proc = run_train([f"data.path={tiny_dataset_dir}", f"training.output_dir={out}", "training.max_steps=12",
                      "training.eval_every_steps=6", "training.save_every_steps=6", "training.report_to=tensorboard"])
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


def test_run_writes_a_reloadable_best_model_that_reproduces_its_validation_eer(finished_run, tiny_dataset_dir):
    import datasets
    from transformers import AutoModelForAudioClassification

    from racl.export import default_feature_extractor
    from racl.metrics import compute_eer
    from racl.scoring import Scorer

    best = finished_run / "best"
    saved = json.loads((best / "validation_scores.json").read_text())
    model = AutoModelForAudioClassification.from_pretrained(best, trust_remote_code=True)
    validation = datasets.load_dataset(str(tiny_dataset_dir))["validation"]
    scorer = Scorer(model.eval(), default_feature_extractor(), batch_size=8)
    scores = [r.score for r in scorer.score_waveforms([np.asarray(a.get_all_samples().data[0]) for a in validation["audio"]])]
    assert compute_eer(scores, validation["label"])[0] == pytest.approx(saved["eer"], abs=1e-9)
    assert json.loads((best / "eval_results.json").read_text())["validation"]["eer"] == pytest.approx(saved["eer"])
    assert list((finished_run / "racl").rglob("events.out.tfevents*")), "tensorboard logs"
    summary = json.loads((finished_run / "summary.json").read_text())
    assert summary["calibration"]["scale"] > 0 and "test" in summary


def test_a_checkpoint_exports_as_a_model_folder_of_that_step(finished_run, tmp_path, capsys):
    from safetensors.numpy import load_file

    from racl.export import main as export_main
    from racl.scoring import Scorer

    out = tmp_path / "step-6"
    assert export_main(["--checkpoint", str(finished_run / "checkpoints" / "step-6"), "--out", str(out)]) == 0
    assert "--calibrate-on validation" in capsys.readouterr().out
    saved, exported = load_file(str(finished_run / "checkpoints" / "step-6" / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert saved.keys() == exported.keys() and all(np.array_equal(saved[k], exported[k]) for k in saved)
    config = json.loads((out / "config.json").read_text())
    assert (config["calibration_scale"], config["calibration_bias"]) == (1.0, 0.0)  # best/'s belongs to another step
    assert Scorer.from_pretrained(str(out), device="cpu").score_waveform(np.zeros(16000, np.float32) + 0.01).label in ("bonafide", "spoof")
    from safetensors.numpy import save_file

    for run, with_best in (("foreign", True), ("no-best", False)):  # weights of another model; a run without best/
        (tmp_path / run / "checkpoints" / "step-1").mkdir(parents=True)
        save_file({"x": np.zeros(2, np.float32)}, str(tmp_path / run / "checkpoints" / "step-1" / "model.safetensors"))
        if with_best:
            shutil.copytree(finished_run / "best", tmp_path / run / "best")
    for bad, expected in ((finished_run / "checkpoints", "not a training checkpoint"), (tmp_path / "nowhere", "not a training checkpoint"),
                          (tmp_path / "foreign" / "checkpoints" / "step-1", "do not fit the model"),
                          (tmp_path / "no-best" / "checkpoints" / "step-1", "has no model folder")):
        assert export_main(["--checkpoint", str(bad), "--out", str(tmp_path / "x")]) == 2
        assert expected in capsys.readouterr().err


def test_selection_last_keeps_the_final_steps_model_and_reports_its_validation_eer(tmp_path, tiny_dataset_dir):
    """The cached path (frozen backbone) keeps the run short; the rule is the same for any run."""
    from safetensors.numpy import load_file

    out = tmp_path / "run"
    proc = run_train([*FAST, f"data.path={tiny_dataset_dir}", f"training.output_dir={out}", "training.max_steps=4",
                      "training.eval_every_steps=2", "training.save_every_steps=2", "training.selection_metric=last",
                      "training.trainable_backbone_layers=0", "training.cache_backbone_states=true",
                      *[f"augment.{kind}_prob=0" for kind in ("rawboost", "noise", "rir")]])
    assert proc.returncode == 0, proc.stderr[-3000:]
    kept, last = load_file(str(out / "best" / "model.safetensors")), load_file(str(out / "checkpoints" / "step-4" / "model.safetensors"))
    assert kept.keys() == last.keys() and all(np.array_equal(kept[k], last[k]) for k in kept)
    saved = json.loads((out / "best" / "validation_scores.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert saved["step"] == summary["best_step"] == 4 and saved["selection_metric"] == "last"
    assert summary["validation_eer"] == pytest.approx(saved["eer"])


def test_a_model_naming_a_familiarity_layer_leaves_training_with_the_check_fitted(tmp_path, tiny_dataset_dir):
    from racl.scoring import Scorer

    out = tmp_path / "run"
    proc = run_train([*FAST, f"data.path={tiny_dataset_dir}", f"training.output_dir={out}", "training.max_steps=2",
                      "training.eval_every_steps=2", "training.save_every_steps=2", "model.overrides.familiarity_layer=1"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = json.loads((out / "best" / "config.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    rows = 24  # the tiny build's training split: 3 speakers x 4 clips, each with its reconstruction, one window each
    assert config["familiarity_layer"] == 1 and config["familiarity_reference_size"] == summary["familiarity"]["reference_windows"] == rows
    assert config["familiarity_threshold"] == pytest.approx(summary["familiarity"]["threshold"])
    assert Scorer.from_pretrained(str(out / "best"), device="cpu").score_waveform(np.full(16000, 0.01, np.float32)).familiar in (True, False)


def test_validation_during_training_scores_every_clip_at_the_end_of_an_epoch(tiny_model, tiny_dataset_dir):
    """Validation runs inside the training loop; after an epoch's last batch Accelerate's gradient state says the
    (training) dataloader has ended, and a gather that trims to that loader's remainder kept a few validation clips
    only (the selection then saw EER 0 at every epoch boundary). Every clip must be scored wherever the loop is."""
    import datasets
    import torch
    from accelerate import Accelerator

    from racl.export import default_feature_extractor
    from racl.training.validation import validation_scores

    validation = datasets.load_dataset(str(tiny_dataset_dir))["validation"]
    accelerator = Accelerator(cpu=True)
    loader = accelerator.prepare(torch.utils.data.DataLoader(list(range(10)), batch_size=4))  # 10 % 4: a remainder
    counts = []
    for _ in loader:  # scored inside the loop, as evaluate_and_keep_best is
        counts.append(len(validation_scores(tiny_model.eval(), default_feature_extractor(), validation, 4, accelerator)["score"]))
    assert accelerator.gradient_state.end_of_dataloader is False  # the loop has ended; the last count was taken before
    assert counts == [len(validation)] * 3


def _weights(path):
    from safetensors.numpy import load_file

    return load_file(str(path / "model.safetensors"))


def test_killed_run_resumed_matches_uninterrupted_run(tmp_path, tiny_dataset_dir):
    common = [f"data.path={tiny_dataset_dir}", "training.max_steps=8", "training.save_every_steps=3", "training.eval_every_steps=100", *FAST]
    full = run_train([*common, f"training.output_dir={tmp_path / 'full'}"])
    assert full.returncode == 0, full.stderr[-3000:]

    out = tmp_path / "killed"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([*TRAIN, *common, f"training.output_dir={out}"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 400
    while not (out / "checkpoints" / "step-3").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (out / "checkpoints" / "step-3").exists() and not (out / "checkpoints" / "step-8").exists()
    resumed = run_train([*common, f"training.output_dir={out}", "--resume", "latest"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = _weights(tmp_path / "full" / "checkpoints" / "step-8"), _weights(out / "checkpoints" / "step-8")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_resuming_a_run_of_another_model_is_refused_by_name(finished_run, tiny_dataset_dir):
    proc = run_train([f"data.path={tiny_dataset_dir}", f"training.output_dir={finished_run}",
                      f"model.config={ROOT / 'configs' / 'model' / 'tiny_sinc.json'}", *FAST, "--resume", "latest"])
    assert proc.returncode != 0 and "holds a run of another model (model.config changed)" in proc.stderr


@pytest.mark.slow
def test_two_process_cpu_training_completes_and_loss_decreases(tmp_path, tiny_dataset_dir):
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", str(ROOT / "train_racl.py"), "--config", str(ROOT / "configs" / "tiny.yaml"),
           f"data.path={tiny_dataset_dir}", f"training.output_dir={tmp_path}", "training.max_steps=16", "training.log_every_steps=1",
           "training.eval_every_steps=8", "training.report_to=tensorboard", "training.lr_head=1.0e-2", "augment={}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(next((tmp_path / "racl").rglob("events.out.tfevents*")).parent))
    events.Reload()
    losses = [e.value for e in events.Scalars("loss/total")]
    assert len(losses) == 16
    assert np.mean(losses[-4:]) < np.mean(losses[:4]), losses
    assert (tmp_path / "best" / "model.safetensors").exists()
