"""Hub integration: the exported folder loads in a fresh process through the Auto classes and the pipeline."""

import json

import numpy as np
import pytest
import torch

from conftest import TINY_CONFIG, run_python, speech_like

LOAD_AND_SCORE = """
import numpy as np, torch, sys
from transformers import AutoConfig, AutoModel, AutoModelForAudioClassification
folder = sys.argv[1] if len(sys.argv) > 1 else {folder!r}
cfg = AutoConfig.from_pretrained(folder, trust_remote_code=True)
assert type(cfg).__name__ == "RACLConfig", type(cfg)
x = torch.from_numpy(np.load({inputs!r}))
with torch.no_grad():
    a = AutoModelForAudioClassification.from_pretrained(folder, trust_remote_code=True).eval()(x).logits
    b = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()(x).logits
assert type(AutoModel.from_pretrained(folder, trust_remote_code=True)).__name__ == "RACLForAudioClassification"
np.save({out_a!r}, a.numpy()); np.save({out_b!r}, b.numpy())
"""


def test_exported_folder_is_complete(tiny_model_dir):
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md", "configuration_racl.py", "modeling_racl.py", "loss_racl.py"} <= names
    assert not any(n.endswith(".bin") for n in names), "weights must be safetensors only"
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_racl.RACLConfig",
        "AutoModel": "modeling_racl.RACLForAudioClassification",
        "AutoModelForAudioClassification": "modeling_racl.RACLForAudioClassification",
    }
    assert config["id2label"] == {"0": "bonafide", "1": "spoof"}
    card = (tiny_model_dir / "README.md").read_text()
    assert "higher = more bona fide" in card and "trust_remote_code=True" in card and "## Limitations" in card
    assert "pipeline_tag: audio-classification" in card


def test_remote_code_imports_only_torch_and_transformers(tiny_model_dir):
    import ast

    for name in ("configuration_racl.py", "modeling_racl.py", "loss_racl.py"):
        tree = ast.parse((tiny_model_dir / name).read_text())
        roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
        assert roots <= {"torch", "transformers", "math", "dataclasses", "__future__", "typing"}, (name, roots)


def test_save_load_in_fresh_process_gives_identical_logits(tiny_model_dir, tmp_path):
    from transformers import AutoModelForAudioClassification

    x = torch.from_numpy(np.stack([speech_like(1.2, 1), speech_like(1.2, 2)]))
    np.save(tmp_path / "x.npy", x.numpy())
    model = AutoModelForAudioClassification.from_pretrained(tiny_model_dir, trust_remote_code=True).eval()
    with torch.no_grad():
        expected = model(x).logits.numpy()
    code = LOAD_AND_SCORE.format(folder=str(tiny_model_dir), inputs=str(tmp_path / "x.npy"), out_a=str(tmp_path / "a.npy"), out_b=str(tmp_path / "b.npy"))
    # run from an empty folder: nothing of this repo is importable except through the Hub folder's code
    proc = run_python(code, cwd=tmp_path, env={"PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), expected)
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), expected)


def test_pipeline_labels_a_wav_file(tiny_model_dir, write_wav):
    from transformers import pipeline

    path = write_wav("clip.wav", seconds=1.5)
    classifier = pipeline("audio-classification", model=str(tiny_model_dir), trust_remote_code=True)
    out = classifier(str(path))
    assert {o["label"] for o in out} == {"bonafide", "spoof"}
    assert sum(o["score"] for o in out) == pytest.approx(1.0, abs=1e-5)


def test_export_cli_from_config(tmp_path):
    from racl.export import main

    assert main(["--config", str(TINY_CONFIG), "--out", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m" / "model.safetensors").exists()
    assert main(["--config", str(tmp_path / "nope.json"), "--out", str(tmp_path / "n")]) == 2


def test_model_card_carries_results_as_model_index(tiny_config):
    import yaml

    from racl.export import model_card

    card = model_card(tiny_config, results={"demo-test": {"eer": 0.0525, "min_tdcf": None}}, repo_id="org/racl")
    meta = yaml.safe_load(card.split("---")[1])
    metric = meta["model-index"][0]["results"][0]["metrics"][0]
    assert metric == {"type": "eer", "name": "EER (%)", "value": 5.25}
    assert "| demo-test | 5.25 | - |" in card


def test_the_model_card_says_when_reconstructions_were_a_class_of_their_own(tiny_config):
    from modeling_racl import RACLConfig
    from racl.export import model_card

    assert "a class of their own" not in model_card(tiny_config)
    three = RACLConfig.from_dict({**tiny_config.to_dict(), "reconstruction_class": True})
    assert "reconstructions were a class of their own" in model_card(three)
