"""Training on part of a pretrained backbone: the top layers only (freeze_backbone_layers), or none of it with its
hidden states computed once (racl.training.cached_states)."""

import json

import numpy as np
import pytest
import torch

from conftest import make_tiny_dataset
from test_backbones import padded_batch, tiny_model
from test_train import FAST, run_train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("model_type", ["wav2vec2", "whisper"])
def test_precomputed_layer_states_give_the_waveforms_logits(model_type):
    model = tiny_model(model_type).eval()
    _, waves, mask = padded_batch([16000, 9000, 23000])
    with torch.no_grad():
        direct = model(waves, attention_mask=mask).logits
        out = model.frontend.features(model.backbone, waves, mask)
        again = model(layer_states=torch.stack(out.hidden_states, dim=1), layer_mask=out.frame_mask).logits
    torch.testing.assert_close(again, direct)
    with pytest.raises(ValueError, match="either input_values"):
        model(waves, layer_states=torch.stack(out.hidden_states, dim=1))


@pytest.mark.parametrize(
    "model_type, trainable",
    [
        ("wav2vec2", {"encoder.layers.1.", "encoder.layer_norm."}),  # pre-norm (XLS-R): the final norm follows the layers
        ("hubert", {"encoder.layers.1."}),  # post-norm: its encoder norm comes first, so it stays frozen
        ("whisper", {"encoder.layers.1.", "encoder.layer_norm."}),
    ],
)
def test_freeze_backbone_layers_leaves_the_top_layers_trainable(model_type, trainable):
    model = tiny_model(model_type)
    model.freeze_backbone_layers(1)
    names = [n for n, p in model.backbone.named_parameters() if p.requires_grad]
    assert {prefix for n in names for prefix in trainable if n.startswith(prefix)} == trainable
    assert all(any(n.startswith(prefix) for prefix in trainable) for n in names)
    assert all(p.requires_grad for p in model.head.parameters())
    model.freeze_backbone_layers(0)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    with pytest.raises(ValueError, match="between 0 and the backbone's 2 layers"):
        model.freeze_backbone_layers(3)


def test_cached_states_are_the_live_states_and_are_reused_until_the_backbone_changes(tmp_path):
    from racl.audio import decode_audio_cell
    from racl.export import default_feature_extractor
    from racl.training.cached_states import STATES_COLUMN, cache_states
    from racl.training.config import load_train_config
    from racl.training.data import load_splits

    data = make_tiny_dataset(tmp_path / "data", clips_per_speaker=2)
    cfg = load_train_config(None, [f"data.path={data}", "model.config=configs/model/tiny.json"])
    train, _, _ = load_splits(cfg)
    model = tiny_model("whisper").eval()
    extractor = default_feature_extractor(model.config)
    cached = cache_states(train, model, extractor, batch_size=3)
    assert STATES_COLUMN in cached.column_names and "audio" not in cached.column_names
    wave = decode_audio_cell(train[1]["audio"], train[1]["utt_id"])
    with torch.no_grad():
        out = model.frontend.features(model.backbone, torch.from_numpy(wave)[None], torch.ones(1, len(wave), dtype=torch.long))
    live = torch.stack(out.hidden_states, dim=2)[0, : int(out.frame_mask.sum())].numpy()
    stored = cached.with_format("numpy")[1][STATES_COLUMN]
    assert cached.features[STATES_COLUMN].dtype == "float16" and stored.shape == live.shape
    np.testing.assert_allclose(stored, live, atol=2e-2, rtol=1e-2)

    assert cache_states(train, model, extractor).cache_files == cached.cache_files  # the same backbone: reused
    with torch.no_grad():
        model.backbone.encoder.layers[0].fc1.weight[0, 0] += 1
    assert cache_states(train, model, extractor).cache_files != cached.cache_files  # other weights: computed anew


@pytest.mark.parametrize("spectral_branch", [False, True])
def test_cached_validation_windows_give_the_scorers_clip_scores(tmp_path, spectral_branch):
    from racl.audio import decode_audio_cell
    from racl.export import default_feature_extractor
    from racl.scoring import Scorer
    from racl.training.cached_states import CachedWindows
    from racl.training.config import load_train_config
    from racl.training.data import load_splits
    from racl.training.validation import validation_scores

    data = make_tiny_dataset(tmp_path / "data", clips_per_speaker=3, seconds=0.9)
    cfg = load_train_config(None, [f"data.path={data}", "model.config=configs/model/tiny.json"])
    _, val, _ = load_splits(cfg)
    # windows of 0.4 s every 0.3 s: each 0.9 s clip is three windows, the last one flush with the clip's end
    model = tiny_model("whisper", score_window_seconds=0.4, score_hop_seconds=0.3, spectral_branch=spectral_branch).eval()
    with torch.no_grad():
        model.head.classifier.weight.mul_(300)  # a random head scores every clip alike: spread its scores out
    extractor = default_feature_extractor(model.config)
    windows = CachedWindows(val, model, extractor, batch_size=2)
    assert len(windows.windows) == 3 * len(val) and windows.rows_of[1] == [3, 4, 5]
    cached = validation_scores(model, extractor, val, batch_size=4, windows=windows)
    live = validation_scores(model, extractor, val, batch_size=4)
    assert cached["index"] == live["index"] and np.array_equal(cached["label"], live["label"])
    np.testing.assert_allclose(cached["score"], live["score"], atol=5e-3)  # the float16 of the cache
    # the tolerance tells windows apart: the same model scoring each clip as one window is far off
    other = Scorer(model, extractor, window_seconds=0.9).score_waveforms([decode_audio_cell(r["audio"], r["utt_id"]) for r in val])
    assert np.abs(np.array([r.score for r in other]) - cached["score"]).max() > 0.1
    assert CachedWindows(val, model, extractor).windows.cache_files == windows.windows.cache_files  # reused


def test_crop_and_pad_crops_the_spectral_frames_with_the_states():
    from racl.training.cached_states import crop_and_pad

    # frame k of clip i holds 100 * i + k in both: aligned crops keep them equal
    lengths = [30, 12, 30]
    states = [np.broadcast_to((100 * i + np.arange(n))[:, None, None], (n, 2, 3)).astype(np.float16) for i, n in enumerate(lengths)]
    spectral = [np.broadcast_to((100 * i + np.arange(n))[:, None], (n, 4)).astype(np.float16) for i, n in enumerate(lengths)]
    plain = crop_and_pad(states, [0, 1, 2], 10, np.random.default_rng(5))
    inputs = crop_and_pad(states, [0, 1, 2], 10, np.random.default_rng(5), spectral)
    torch.testing.assert_close(inputs["layer_states"], plain["layer_states"])  # the branch draws nothing of its own
    assert set(inputs) == {"layer_states", "layer_mask", "spectral_states"} and inputs["spectral_states"].shape == (3, 10, 4)
    torch.testing.assert_close(inputs["spectral_states"][..., 0], inputs["layer_states"][:, 0, :, 0])
    assert (inputs["spectral_states"][..., 0].diff(dim=1) == 1).all()  # contiguous crops
    assert inputs["spectral_states"][:, 0, 0].tolist() != [0, 100, 200]  # at random offsets


def test_a_cached_run_with_the_spectral_branch_stores_its_frames_and_trains_it(tmp_path, tiny_dataset_dir):
    from racl.export import default_feature_extractor
    from racl.training.cached_states import SPECTRAL_COLUMN, cache_states
    from racl.training.config import load_train_config
    from racl.training.data import load_splits

    cfg = load_train_config(None, [f"data.path={tiny_dataset_dir}", "model.config=configs/model/tiny.json"])
    train, _, _ = load_splits(cfg)
    model = tiny_model("whisper", spectral_branch=True, filterbank_bins=8).eval()
    cached = cache_states(train, model, default_feature_extractor(model.config)).with_format("numpy")
    assert cached.features[SPECTRAL_COLUMN].shape == (None, 8)
    row = cached[0]
    assert row[SPECTRAL_COLUMN].shape[0] == row["layer_states"].shape[0] and np.abs(row[SPECTRAL_COLUMN]).max() > 0
    out = tmp_path / "run"
    proc = run_train([*FAST, f"data.path={tiny_dataset_dir}", f"training.output_dir={out}", "training.max_steps=4",
                      "training.eval_every_steps=2", "training.trainable_backbone_layers=0", "training.cache_backbone_states=true",
                      "model.overrides.spectral_branch=true", *[f"augment.{kind}_prob=0" for kind in ("rawboost", "noise", "rir")]])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "best" / "config.json").read_text())["spectral_branch"] is True


def test_a_cached_run_trains_the_head_only_and_saves_a_model_scored_from_waveforms_and_shares_its_cache(tmp_path, tiny_dataset_dir):
    from safetensors.numpy import load_file

    out = tmp_path / "run"
    proc = run_train([*FAST, f"data.path={tiny_dataset_dir}", f"training.output_dir={out}", "training.max_steps=6",
                      "training.eval_every_steps=3", "training.save_every_steps=3", "training.trainable_backbone_layers=0", "training.cache_backbone_states=true",
                      *[f"augment.{kind}_prob=0" for kind in ("rawboost", "noise", "rir")]])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "backbone hidden states" in proc.stderr  # the map ran
    first, best = load_file(str(out / "checkpoints" / "step-3" / "model.safetensors")), load_file(str(out / "checkpoints" / "step-6" / "model.safetensors"))
    moved = {k for k in first if not np.array_equal(first[k], best[k])}
    assert moved and all(not k.startswith("backbone.") for k in moved)
    assert json.loads((out / "best" / "validation_scores.json").read_text())["eer"] <= 1
    # Another selection of the same split trains on the same cache: the whole split was cached, then selected.
    again = run_train([*FAST, f"data.path={tiny_dataset_dir}", f"training.output_dir={tmp_path / 'fewer'}", "training.max_steps=2",
                       "training.trainable_backbone_layers=0", "training.cache_backbone_states=true", "data.exclude_attacks=[A01]",
                       *[f"augment.{kind}_prob=0" for kind in ("rawboost", "noise", "rir")]])
    assert again.returncode == 0 and "backbone hidden states" not in again.stderr, again.stderr[-3000:]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["training.cache_backbone_states=true", "training.trainable_backbone_layers=1"], "needs a pretrained backbone that stays frozen"),
        (["training.cache_backbone_states=true", "training.freeze_backbone=true", "augment.noise_prob=0.5"], "waveform augmentation cannot apply"),
        (["training.trainable_backbone_layers=5"], "'training.trainable_backbone_layers': trainable_layers must be between 0"),
    ],
)
def test_partial_training_refuses_what_it_cannot_do(tmp_path, tiny_dataset_dir, overrides, message):
    args = ["training.report_to=none", f"data.path={tiny_dataset_dir}", f"training.output_dir={tmp_path}", "training.max_steps=2"]
    proc = run_train([*args, *overrides])
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]


def test_frozen_probe_scores_the_test_split_from_the_training_configs_backbone(tmp_path, capsys):
    from benchmarks.frozen_probe import main as probe

    data = make_tiny_dataset(tmp_path / "data", clips_per_speaker=3)
    out = tmp_path / "probe.json"
    assert probe(["--config", "configs/tiny.yaml", f"data.path={data}", "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert 0.0 <= summary["eer"] <= 1.0 and summary["per_attack"]
    assert "logistic regression" in capsys.readouterr().out


def test_frozen_probe_probes_a_subset_of_layers_and_names_a_missing_one(tmp_path, capsys):
    from benchmarks.frozen_probe import main as probe

    data = make_tiny_dataset(tmp_path / "data", clips_per_speaker=3)
    assert probe(["--config", "configs/tiny.yaml", f"data.path={data}", "--layers", "0", "2"]) == 0
    assert "(layers 0 2)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        probe(["--config", "configs/tiny.yaml", f"data.path={data}", "--layers", "99"])
    assert exit_info.value.code == 2 and "--layers: this backbone has hidden states 0 to" in capsys.readouterr().err
