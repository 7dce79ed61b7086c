"""The ablation runner (racl.ablation): seed-major runs, one summary per (variant, seed), resumable."""

import json

import yaml

from conftest import ROOT, make_tiny_dataset


def tiny_ablation_config(tmp_path, model: str, data_path) -> str:
    """configs/tiny.yaml as a 2-step ablation recipe on ``data_path`` with the tiny ``model`` config."""
    cfg = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())
    cfg["model"]["config"] = str(ROOT / "configs" / "model" / model)
    cfg["data"]["path"] = str(data_path)
    cfg["augment"] = {}
    cfg["training"].update(max_steps=2, eval_every_steps=2, save_every_steps=2, per_device_batch_size=4)
    config = tmp_path / "ablation.yaml"
    config.write_text(yaml.safe_dump(cfg))
    return str(config)


def test_ablation_runs_variants_skips_finished_ones_and_resumes_interrupted_ones(tmp_path, monkeypatch, capfd):
    from racl import ablation

    data = make_tiny_dataset(tmp_path / "data", clips_per_speaker=2, seconds=0.4)
    config = tiny_ablation_config(tmp_path, "tiny_sinc.json", data)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "ablation"
    args = ["--config", config, "--seeds", "0", "--paradigms", "smooth", "--variants", "a", "e-smooth", "--out", str(out)]

    assert ablation.main(args) == 0
    summaries = {key: out / key / "seed-0" / "summary.json" for key in ("a", "e-smooth")}
    for key, path in summaries.items():
        assert 0.0 <= json.loads(path.read_text())["test"]["eer"] <= 1.0, key
    train_cfg = json.loads((out / "e-smooth" / "seed-0" / "train_config.json").read_text())
    assert train_cfg["data"]["reconstructions"] == ["smooth"] and train_cfg["model"]["overrides"]["racl_gamma"] == 0.3
    assert json.loads((out / "a" / "seed-0" / "train_config.json").read_text())["data"]["use_reconstructions"] is False
    results = json.loads((out / "ablation.json").read_text())
    assert results["a"]["seeds_done"] == [0] and "pooled" in results["e-smooth"]
    table = (out / "ablation.md").read_text()
    assert "| (a) CE, originals only | 1 |" in table and "(e-smooth)" in table
    per_paradigm = table.split("Per reconstruction paradigm")[1]  # one column per paradigm of the test split
    assert "| variant | smooth |" in per_paradigm and "| (e-smooth) | " in per_paradigm
    assert results["e-smooth"]["reconstruction:smooth"]["values"][0] == json.loads(summaries["e-smooth"].read_text())["test"]["per_reconstruction"]["smooth"]["eer"]

    stamps = {key: path.stat().st_mtime_ns for key, path in summaries.items()}
    assert ablation.main(args) == 0  # everything finished: nothing is retrained
    assert {key: path.stat().st_mtime_ns for key, path in summaries.items()} == stamps

    # An interrupted run (checkpoints, no summary) goes on from its last checkpoint instead of restarting.
    summaries["e-smooth"].unlink()
    capfd.readouterr()
    assert ablation.main(args) == 0
    assert "resumed from" in capfd.readouterr().err
    assert summaries["e-smooth"].exists() and summaries["a"].stat().st_mtime_ns == stamps["a"]

    # --tables-only trains nothing and rebuilds the tables from every finished run, whatever --variants says.
    (out / "ablation.md").unlink()
    stamps = {key: path.stat().st_mtime_ns for key, path in summaries.items()}
    tables_only = ["--config", config, "--seeds", "0", "--paradigms", "smooth", "--variants", "b", "--tables-only", "--out", str(out)]
    assert ablation.main(tables_only) == 0
    assert {key: path.stat().st_mtime_ns for key, path in summaries.items()} == stamps
    assert not (out / "b").exists()
    table = (out / "ablation.md").read_text()
    assert "| (a) CE, originals only | 1 |" in table and "| (b) CE, reconstructions as spoof | 0 |" in table


def test_ablation_data_option_replaces_the_configs_dataset_for_every_run(tmp_path, monkeypatch):
    from racl import ablation

    data = make_tiny_dataset(tmp_path / "data", clips_per_speaker=2, seconds=0.4)
    config = tiny_ablation_config(tmp_path, "tiny_filterbank.json", tmp_path / "no-such-dataset")  # --data must replace it
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "ablation"

    assert ablation.main(["--config", config, "--data", str(data), "--seeds", "0", "--variants", "b", "--out", str(out)]) == 0
    assert json.loads((out / "b" / "seed-0" / "train_config.json").read_text())["data"]["path"] == str(data)
    assert "pooled" in json.loads((out / "ablation.json").read_text())["b"]
    assert f"with data `{data}`" in (out / "ablation.md").read_text().splitlines()[0]


def test_variant_files_are_read_like_every_other_config(tmp_path, monkeypatch):
    import racl.ablation as ablation

    (tmp_path / "x.yaml").write_text("extends: ../ablation.yaml\nmodel:\n  overrides: {racl_alpha: 5e-1}\ntraining: {lr_head: 1e-3, output_dir: out}\n")
    monkeypatch.setattr(ablation, "VARIANT_DIR", tmp_path)
    # exponent floats stay floats (not the strings "5e-1", "1e-3"); extends and output_dir are not the variant's own keys
    assert ablation.variant_overrides("x") == ["model.overrides.racl_alpha=0.5", "training.lr_head=0.001"]
