"""Every shipped config parses, and every model it names builds: full size on the meta device (no memory, no
download), so a recipe that cannot start fails here rather than on a GPU machine."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch

from conftest import ROOT

from racl.config import read_model_config
from racl.training.config import ConfigError, load_train_config

CONFIGS = ROOT / "configs"
CORPUS = sorted(CONFIGS.glob("demo_corpus*.yaml"))  # which clips the demo corpus holds (racl/demo.py), not training runs
TRAINING = sorted({*CONFIGS.glob("*.yaml"), *(CONFIGS / "ablation").glob("*.yaml")} - set(CORPUS))
DATA = sorted((CONFIGS / "data").glob("*.yaml"))
MODELS = sorted((CONFIGS / "model").glob("*.json"))
XLSR_300M_PARAMS = 315_000_000  # facebook/wav2vec2-xls-r-300m without its quantiser and projection heads


def name(path: Path) -> str:
    return str(path.relative_to(CONFIGS))


def model_config(path: Path, overrides: dict | None = None):
    from modeling_racl import RACLConfig

    return RACLConfig(**{**read_model_config(path), **(overrides or {})})


def build_on_meta(config):
    from modeling_racl import RACLForAudioClassification

    with torch.device("meta"):
        return RACLForAudioClassification(config)


@functools.cache
def built(path: Path):
    """One meta build per model JSON: configs that differ only in the loss share the architecture."""
    return build_on_meta(model_config(path))


def loss_of(config):
    from modeling_racl.loss_racl import RACLLoss

    return RACLLoss(config)


def test_there_are_configs_of_every_kind():
    names = {name(p) for p in [*TRAINING, *DATA, *MODELS]}
    assert {"asvspoof2019_la.yaml", "data/asvspoof2019_la.yaml", "model/xlsr300m_aasist.json",
            *(f"ablation/{k}.yaml" for k in "abcde")} <= names


@pytest.mark.parametrize("path", TRAINING, ids=name)
def test_training_config_parses_and_its_model_builds(path, monkeypatch):
    monkeypatch.chdir(ROOT)  # model.config paths are relative to the checkout, as the README runs them
    cfg = load_train_config(path)
    source = Path(cfg.model.config)
    assert source.is_file(), f"{name(path)}: model.config {source} is not a shipped model JSON"
    config = model_config(source, cfg.model.overrides)  # every override is a valid RACLConfig value
    architecture = {k for k in cfg.model.overrides if not k.startswith("racl_")}
    model = build_on_meta(config) if architecture else built(source.resolve())
    assert model.config.num_labels == 2 and loss_of(config).cls_weight >= 0


@pytest.mark.parametrize("path", MODELS, ids=name)
def test_model_config_builds_full_size_on_the_meta_device(path):
    model = built(path.resolve())
    assert sum(p.numel() for p in model.parameters()) > 0


def test_a_model_config_variant_extends_its_base(tmp_path):
    demo, base = (read_model_config(CONFIGS / "model" / f) for f in ("demo_whisper_base.json", "whisper_base_aasist.json"))
    assert demo["backbone_config"] == base["backbone_config"] and demo["aggregation"] == base["aggregation"]
    assert (demo["whisper_window_seconds"], base["whisper_window_seconds"]) == (2.0, 4.0)  # the variant's own keys win
    (tmp_path / "loop.json").write_text('{"extends": "loop.json", "aggregation": "gated"}')
    with pytest.raises(ConfigError, match="a cycle"):
        read_model_config(tmp_path / "loop.json")


def test_the_paper_recipe_is_xlsr_300m_with_the_papers_loss_and_input():
    cfg = load_train_config(CONFIGS / "asvspoof2019_la.yaml")
    model = built((ROOT / cfg.model.config).resolve())
    backbone = sum(p.numel() for p in model.backbone.parameters())
    assert abs(backbone - XLSR_300M_PARAMS) < 0.01 * XLSR_300M_PARAMS, backbone
    assert model.config.backbone_config.num_hidden_layers == 24 and model.config.backbone_config.hidden_size == 1024
    assert model.config.aggregation == "weighted" and model.config.frontend == "backbone"
    assert model.loss_fn.cls_weight == pytest.approx(1 - 0.6 - 0.1)  # the paper's (1 - alpha - beta) * Lcls
    assert (model.loss_fn.alpha, model.loss_fn.beta, model.loss_fn.gamma) == (0.6, 0.1, 0.3)
    assert int(cfg.data.crop_seconds * 16_000) == 64_600
    assert cfg.training.mixed_precision == "bf16" and cfg.training.contrastive_batch == "global"


def test_ablation_variants_change_only_the_loss_and_data():
    base = load_train_config(CONFIGS / "asvspoof2019_la.yaml").to_dict()
    weights = {}
    for key in "abcde":
        variant = load_train_config(CONFIGS / "ablation" / f"{key}.yaml").to_dict()
        changed = {section for section in base if variant[section] != base[section]}
        assert changed <= {"model", "data", "training"}, key
        assert {k for k in variant["training"] if variant["training"][k] != base["training"][k]} == {"output_dir"}, key
        loss = loss_of(model_config(ROOT / variant["model"]["config"], variant["model"]["overrides"]))
        weights[key] = (round(loss.cls_weight, 6), loss.alpha, loss.beta, loss.gamma)
    assert weights == {"a": (1.0, 0, 0, 0), "b": (1.0, 0, 0, 0), "c": (0.4, 0.6, 0, 0), "d": (0.3, 0.6, 0.1, 0), "e": (0.3, 0.6, 0.1, 0.3)}
    assert load_train_config(CONFIGS / "ablation" / "a.yaml").data.use_reconstructions is False


@pytest.mark.parametrize("path", DATA, ids=name)
def test_data_config_parses(path):
    from datasets_scripts.build_config import load_config

    config, _ = load_config(path)
    assert config.sources


@pytest.mark.parametrize("path", CORPUS, ids=name)
def test_demo_corpus_config_parses(path):
    from racl.config import read_yaml

    raw, _ = read_yaml(path)
    assert raw and "extends" not in raw


def test_the_asvspoof_build_reconstructs_spoofs_too():
    from datasets_scripts.build_config import load_config

    config, _ = load_config(CONFIGS / "data" / "asvspoof2019_la.yaml")
    assert config.paradigms and all(set(p.apply_to) == {"bonafide", "spoof"} for p in config.paradigms)


def test_a_float_in_exponent_notation_without_a_dot_is_read_as_a_float():
    # YAML 1.1 reads 1e-5 as a string; a learning rate typed that way on the command line must still work.
    cfg = load_train_config(ROOT / "configs" / "demo.yaml", ["training.lr_backbone=1e-5", "training.lr_head=2E+0"])
    assert cfg.training.lr_backbone == 1e-5 and isinstance(cfg.training.lr_backbone, float)
    assert cfg.training.lr_head == 2.0
    # the same reading reaches values no dataclass field checks (model.overrides go to RACLConfig as they are)
    assert load_train_config(ROOT / "configs" / "demo.yaml", ["model.overrides.racl_alpha=6e-1"]).model.overrides == {"racl_alpha": 0.6}
    with pytest.raises(ConfigError, match="lr_backbone.*must be float"):
        load_train_config(ROOT / "configs" / "demo.yaml", ["training.lr_backbone=1e-5x"])


def test_a_training_config_without_model_config_is_one_error(tmp_path, capsys):
    from racl.training.cli import main

    bare = tmp_path / "bare.yaml"
    bare.write_text("data:\n  path: somewhere\ntraining:\n  max_steps: 5\n")
    with pytest.raises(ConfigError, match=r"`model\.config`: required"):
        load_train_config(bare)
    assert main(["--config", str(bare)]) == 2  # before any data or model is loaded
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("train_racl: ") and "`model.config`: required" in err, err
    assert load_train_config(bare, ["model.config=configs/model/tiny.json"]).model.config  # an override names it too
