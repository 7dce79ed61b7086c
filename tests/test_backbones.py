"""Every pretrained-backbone family behind ``frontend="backbone"`` (Wav2Vec2, WavLM, HuBERT, Data2VecAudio, Whisper's
encoder) on a tiny random config: masking, training, aggregation modes, save/reload, the pipeline, pretrained
weights; and Whisper's own log-mel and windows."""

import ast
import json

import numpy as np
import pytest
import torch
from transformers import CONFIG_MAPPING, WhisperConfig

from conftest import ROOT, SR, run_python, speech_like
from modeling_racl import BACKBONE_TYPES, RACLConfig, RACLForAudioClassification, frontend_for
from modeling_racl.frontends_racl import SPEECH_ENCODERS
from modeling_racl.signal_racl import whisper_log_mel, whisper_mel_filters

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask:UserWarning"),  # WavLM's attention, in torch
]

_CONV = dict(conv_dim=[16] * 7, conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_stride=[5, 2, 2, 2, 2, 2, 2])
_W2V = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_conv_pos_embedding_groups=2,
    hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0, layerdrop=0.0,
    mask_time_prob=0.0, **_CONV,
)  # fmt: skip
# Group-norm feature encoders normalise over the padding too, so the masked families use layer norm (as XLS-R).
TINY_BACKBONES = {
    "wav2vec2": {**_W2V, "num_conv_pos_embeddings": 16, "feat_extract_norm": "layer", "do_stable_layer_norm": True},
    "wavlm": {**_W2V, "num_conv_pos_embeddings": 16, "feat_extract_norm": "layer", "do_stable_layer_norm": True, "num_buckets": 16, "max_bucket_distance": 64},
    "hubert": {**_W2V, "num_conv_pos_embeddings": 16, "feat_extract_norm": "layer", "do_stable_layer_norm": False},
    "data2vec-audio": {**_W2V, "num_conv_pos_embeddings": 2, "conv_pos_kernel_size": 5},  # two stacked positional convs
    "whisper": dict(
        d_model=32, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64, num_mel_bins=16, decoder_layers=1,
        decoder_attention_heads=2, decoder_ffn_dim=64, vocab_size=64, max_target_positions=16, pad_token_id=0,
        bos_token_id=1, eos_token_id=2, decoder_start_token_id=1, dropout=0.0, attention_dropout=0.0,
    ),
}  # fmt: skip
TINY_HEAD = dict(
    aggregation_attention_dim=16, aasist_linear_dim=24, aasist_first_pool=[3, 3], aasist_encoder_channels=[[1, 8], [8, 8], [8, 16]],
    aasist_gat_dims=[16, 8], aasist_attention_hidden=16,
)  # fmt: skip
WINDOW_SECONDS = 1.0  # Whisper's tiny window: 50 positions, so the tests see inputs longer and shorter than one


def tiny_config(model_type: str, **overrides) -> RACLConfig:
    backbone = {"model_type": model_type, **TINY_BACKBONES[model_type]}
    overrides = {"whisper_window_seconds": WINDOW_SECONDS, **TINY_HEAD, **overrides}
    return RACLConfig(backbone_config=backbone, backbone_name_or_path=None, **overrides)


def tiny_model(model_type: str, seed: int = 0, **overrides) -> RACLForAudioClassification:
    torch.manual_seed(seed)
    return RACLForAudioClassification(tiny_config(model_type, **overrides))


def padded_batch(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    waves = [0.3 * torch.randn(n, generator=g) for n in lengths]
    x = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
    mask = (torch.arange(x.shape[1])[None] < torch.tensor(lengths)[:, None]).long()
    return waves, x, mask


def test_every_config_backbone_type_has_a_front_end():
    assert set(SPEECH_ENCODERS) | {"whisper"} == set(BACKBONE_TYPES) == set(TINY_BACKBONES)


@pytest.mark.parametrize("model_type", BACKBONE_TYPES)
def test_padding_does_not_change_a_clips_logits(model_type):
    model = tiny_model(model_type).eval()
    waves, x, mask = padded_batch([SR, int(1.6 * SR) + 37, int(0.55 * SR) + 123])
    with torch.no_grad():
        batched = model(x, attention_mask=mask)
        alone = torch.cat([model(w[None]).logits for w in waves])
    torch.testing.assert_close(batched.logits, alone, atol=1e-4, rtol=1e-4)
    assert batched.layer_weights.shape == (3, model.config.backbone_config.num_hidden_layers + 1)


@pytest.mark.parametrize("model_type", BACKBONE_TYPES)
def test_forward_backward_reaches_the_backbone(model_type):
    model = tiny_model(model_type).train()
    _, x, mask = padded_batch([SR, int(0.7 * SR)])
    out = model(x, attention_mask=mask, labels=torch.tensor([0, 1]), is_reconstructed=torch.tensor([False, True]), output_hidden_states=True)
    assert out.logits.shape == (2, 2) and torch.isfinite(out.loss)
    assert len(out.hidden_states) == model.config.backbone_config.num_hidden_layers + 1  # one pass, every layer
    out.loss.backward()
    first_layer = {n: p.grad for n, p in model.backbone.named_parameters() if "layers.0." in n}
    assert first_layer and all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in first_layer.values())
    assert model.aggregation.layer_logits.grad.abs().sum() > 0


@pytest.mark.parametrize("mode", ["weighted", "gated", "attention", "last"])
@pytest.mark.parametrize("model_type", BACKBONE_TYPES)
def test_each_aggregation_mode(model_type, mode):
    model = tiny_model(model_type, aggregation=mode).eval()
    waves, x, mask = padded_batch([int(0.8 * SR), int(1.3 * SR)])
    with torch.no_grad():
        out = model(x, attention_mask=mask)
        alone = model(waves[0][None]).logits
    torch.testing.assert_close(out.layer_weights.sum(dim=1), torch.ones(2))
    torch.testing.assert_close(out.logits[:1], alone, atol=1e-4, rtol=1e-4)
    model.train()(x, attention_mask=mask, labels=torch.tensor([0, 1])).loss.backward()


@pytest.mark.parametrize("model_type", BACKBONE_TYPES)
def test_backbone_config_round_trips_as_its_own_class(model_type, tmp_path):
    config = tiny_config(model_type)
    config.save_pretrained(tmp_path)
    reloaded = RACLConfig.from_pretrained(tmp_path)
    assert type(reloaded.backbone_config) is type(config.backbone_config) is CONFIG_MAPPING[model_type]
    assert reloaded.backbone_config.to_dict() == config.backbone_config.to_dict()
    # a config object is taken as it is (a copy for Whisper, whose positions the window sets)
    again = RACLConfig(backbone_config=config.backbone_config, whisper_window_seconds=WINDOW_SECONDS)
    assert again.backbone_config.to_dict() == config.backbone_config.to_dict()


def test_old_configs_still_load():
    legacy = RACLConfig(frontend="wav2vec2", backbone_config={"hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 1, "intermediate_size": 8})
    assert legacy.frontend == "backbone" and legacy.backbone_config.model_type == "wav2vec2"  # a dict without model_type
    for name in ("tiny", "demo_wav2vec2"):
        config = RACLConfig.from_json_file(str(ROOT / "configs" / "model" / f"{name}.json"))
        assert config.frontend == "backbone" and config.backbone_config.model_type == "wav2vec2"
    assert RACLConfig().min_input_samples == 400


@pytest.mark.parametrize("bad", [{"model_type": "bert"}, {"model_type": "wav2vec2-conformer"}])
def test_unsupported_backbones_are_refused(bad):
    with pytest.raises(ValueError, match=bad["model_type"]):
        RACLConfig(backbone_config=bad)


def test_whisper_base_config_is_whisper_base_s_encoder():
    config = RACLConfig.from_json_file(str(ROOT / "configs" / "model" / "whisper_base_aasist.json"))
    bb = config.backbone_config
    assert (bb.model_type, bb.d_model, bb.encoder_layers, bb.encoder_attention_heads, bb.encoder_ffn_dim, bb.num_mel_bins) == ("whisper", 512, 6, 8, 2048, 80)
    assert bb.max_source_positions == 200 and config.whisper_window_seconds == 4.0  # a 4 s crop is one window
    assert frontend_for(config).num_layers == 7 and config.backbone_name_or_path


def test_the_saved_feature_extractor_normalises_all_but_whisper():
    from racl.export import default_feature_extractor

    assert default_feature_extractor().do_normalize
    for model_type in BACKBONE_TYPES:
        assert default_feature_extractor(tiny_config(model_type)).do_normalize == (model_type != "whisper")


# ---- pretrained weights ----


def _save_pretrained_backbone(model_type, folder, whisper_class="WhisperForConditionalGeneration", **changes):
    import transformers

    backbone = CONFIG_MAPPING[model_type](**{**TINY_BACKBONES[model_type], **changes})
    cls = getattr(transformers, whisper_class) if model_type == "whisper" else SPEECH_ENCODERS[model_type]
    torch.manual_seed(1)
    source = cls(backbone)
    source.save_pretrained(folder)
    return source.get_encoder() if model_type == "whisper" else source


@pytest.mark.parametrize(
    "model_type,whisper_class",
    [(t, None) for t in SPEECH_ENCODERS] + [("whisper", "WhisperModel"), ("whisper", "WhisperForConditionalGeneration")],
)
def test_from_pretrained_backbone_loads_the_encoder_weights(model_type, whisper_class, tmp_path):
    reference = _save_pretrained_backbone(model_type, tmp_path / "bb", whisper_class)  # Whisper: 1500 positions
    model = RACLForAudioClassification.from_pretrained_backbone(tiny_config(model_type), str(tmp_path / "bb"))
    if model_type == "whisper":
        loaded, expected = model.backbone.encoder.layers[1].fc1.weight, reference.layers[1].fc1.weight
        positions = model.backbone.encoder.embed_positions.weight
        torch.testing.assert_close(positions, reference.embed_positions.weight[: positions.shape[0]], atol=0, rtol=0)
    else:
        loaded, expected = model.backbone.encoder.layers[1].feed_forward.output_dense.weight, reference.encoder.layers[1].feed_forward.output_dense.weight
    torch.testing.assert_close(loaded, expected, atol=0, rtol=0)  # the reference's seeded weights, not a fresh init


def test_whisper_refuses_a_checkpoint_shorter_than_its_window_and_one_without_an_encoder(tmp_path):
    _save_pretrained_backbone("whisper", tmp_path / "short", max_source_positions=20)  # 0.4 s < the 1 s window
    with pytest.raises(ValueError, match="positions"):
        RACLForAudioClassification.from_pretrained_backbone(tiny_config("whisper"), str(tmp_path / "short"))
    _save_pretrained_backbone("wav2vec2", tmp_path / "w2v")
    with pytest.raises(ValueError, match="no Whisper encoder weights"):
        RACLForAudioClassification.from_pretrained_backbone(tiny_config("whisper"), str(tmp_path / "w2v"))


# ---- Whisper: log-mel and windows ----


@pytest.mark.parametrize("num_mel_bins,chunk_seconds,clip_seconds", [(80, 30, 7.3), (128, 4, 2.5), (80, 4, 4.0)])
def test_whisper_log_mel_equals_whisper_feature_extractor(num_mel_bins, chunk_seconds, clip_seconds):
    from transformers import WhisperFeatureExtractor

    extractor = WhisperFeatureExtractor(feature_size=num_mel_bins, chunk_length=chunk_seconds)
    np.testing.assert_allclose(whisper_mel_filters(num_mel_bins).numpy(), extractor.mel_filters, atol=1e-8, rtol=1e-5)
    wave = speech_like(clip_seconds, seed=num_mel_bins)
    expected = extractor(wave, sampling_rate=SR, return_tensors="pt").input_features  # zero-padded to the chunk
    window = torch.zeros(1, chunk_seconds * SR)
    window[0, : len(wave)] = torch.from_numpy(wave)
    ours = whisper_log_mel(window, torch.hann_window(400), whisper_mel_filters(num_mel_bins))
    assert ours.shape == expected.shape == (1, num_mel_bins, chunk_seconds * 100)
    torch.testing.assert_close(ours, expected, atol=2e-5, rtol=0)


def test_the_model_computes_whisper_s_log_mel_with_its_saved_buffers():
    from transformers import WhisperFeatureExtractor

    model = tiny_model("whisper")
    wave = speech_like(0.6, seed=3)
    expected = WhisperFeatureExtractor(feature_size=16, chunk_length=1)(wave, sampling_rate=SR, return_tensors="pt").input_features
    torch.testing.assert_close(model.backbone.log_mel(torch.from_numpy(wave)[None]), expected, atol=2e-5, rtol=0)
    assert {"backbone.window", "backbone.mel_filters"} <= set(model.state_dict())


def test_whisper_positions_are_one_window():
    config = tiny_config("whisper")
    assert config.backbone_config.max_source_positions == 50  # 1 s / 20 ms
    assert tiny_model("whisper").backbone.encoder.embed_positions.num_embeddings == 50
    with pytest.raises(ValueError, match="whisper_window_seconds"):
        tiny_config("whisper", whisper_window_seconds=0.03)  # not a whole number of 20 ms frames


@pytest.mark.parametrize("seconds", [0.37, 1.0, 2.3])
def test_whisper_encodes_window_by_window_and_masks_the_padding(seconds):
    model = tiny_model("whisper").eval()
    samples = int(seconds * SR)
    x = 0.3 * torch.randn(1, samples, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        out = model.frontend.features(model.backbone, x, None)
        windows = -(-samples // SR)
        assert out.hidden_states[-1].shape == (1, 50 * windows, 32)
        assert int(out.frame_mask.sum()) == -(-samples // 320)  # real frames only; the padded tail is masked
        padded = torch.nn.functional.pad(x, (0, windows * SR - samples)).reshape(windows, SR)
        for w in range(windows):  # each window is Whisper's input on its own, the frames concatenated
            alone = model.backbone.encoder(model.backbone.log_mel(padded[w : w + 1])).last_hidden_state
            torch.testing.assert_close(out.hidden_states[-1][:, 50 * w : 50 * (w + 1)], alone, atol=1e-5, rtol=1e-5)
        logits = model(x).logits
        # a shorter clip is zero-padded to the window either way: extra padding in the batch changes nothing
        longer = torch.nn.functional.pad(x, (0, SR // 2))
        mask = (torch.arange(longer.shape[1]) < samples).long()[None]
        torch.testing.assert_close(model(longer, attention_mask=mask).logits, logits, atol=1e-5, rtol=1e-5)


# ---- Hub folder, fresh process, pipeline ----

FRESH = """
import json, numpy as np, torch
from transformers import AutoModelForAudioClassification, pipeline
torch.set_num_threads(1)  # as the test process: the same kernels sum in the same order
results = {{}}
for model_type, folder in {folders!r}.items():
    model = AutoModelForAudioClassification.from_pretrained(folder, trust_remote_code=True).eval()
    data = np.load({inputs!r})
    with torch.no_grad():
        logits = model(torch.from_numpy(data["x"]), attention_mask=torch.from_numpy(data["mask"])).logits
    scores = pipeline("audio-classification", model=folder, trust_remote_code=True)({wav!r})
    results[model_type] = {{"logits": logits.tolist(), "pipeline": {{s["label"]: s["score"] for s in scores}}}}
print("RESULTS" + json.dumps(results))
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every family exported as a Hub folder, then reloaded and piped once in one fresh process."""
    import soundfile as sf

    from racl.export import export_model_folder

    root = tmp_path_factory.mktemp("backbones")
    models = {t: tiny_model(t, seed=5).eval() for t in BACKBONE_TYPES}
    folders = {t: str(export_model_folder(m, root / t)) for t, m in models.items()}
    _, x, mask = padded_batch([int(1.2 * SR), int(0.6 * SR)], seed=2)
    np.savez(root / "inputs.npz", x=x.numpy(), mask=mask.numpy())
    sf.write(root / "clip.wav", speech_like(1.5, seed=4), SR)
    proc = run_python(FRESH.format(folders=folders, inputs=str(root / "inputs.npz"), wav=str(root / "clip.wav")), cwd=root, env={"PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.split("RESULTS", 1)[1])
    return models, folders, x, mask, root / "clip.wav", results


@pytest.mark.parametrize("model_type", BACKBONE_TYPES)
def test_a_fresh_process_reloads_the_hub_folder_with_identical_logits(exported, model_type):
    from transformers import AutoModelForAudioClassification

    models, folders, x, mask, _, results = exported
    reloaded = AutoModelForAudioClassification.from_pretrained(folders[model_type], trust_remote_code=True).eval()
    with torch.no_grad():
        original = models[model_type](x, attention_mask=mask).logits.numpy()
        expected = reloaded(x, attention_mask=mask).logits.numpy()
    np.testing.assert_allclose(expected, original, atol=1e-6)  # same weights; loaded tensors may sum in another order
    np.testing.assert_array_equal(np.array(results[model_type]["logits"], dtype=np.float32), expected)


@pytest.mark.parametrize("model_type", BACKBONE_TYPES)
def test_the_pipeline_scores_a_wav_as_the_model_does(exported, model_type):
    import soundfile as sf
    from transformers import AutoFeatureExtractor

    models, folders, _, _, wav, results = exported
    extractor = AutoFeatureExtractor.from_pretrained(folders[model_type])
    assert extractor.do_normalize == (model_type != "whisper")
    inputs = extractor(sf.read(wav, dtype="float32")[0], sampling_rate=SR, return_tensors="pt")
    with torch.no_grad():
        probabilities = models[model_type](**inputs).logits.softmax(-1)[0]
    scores = results[model_type]["pipeline"]
    assert scores["bonafide"] == pytest.approx(float(probabilities[0]), abs=1e-5)
    assert scores["spoof"] == pytest.approx(float(probabilities[1]), abs=1e-5)


def test_the_hub_folder_carries_every_remote_code_file_importing_only_torch_and_transformers(exported):
    from racl.export import REMOTE_CODE_FILES

    folder = exported[1]["whisper"]
    shipped = {p.name for p in (ROOT / "modeling_racl").glob("*.py")} - {"__init__.py"}
    assert set(REMOTE_CODE_FILES) == shipped
    for name in REMOTE_CODE_FILES:
        tree = ast.parse(open(f"{folder}/{name}").read())
        roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
        assert roots <= {"torch", "transformers", "math", "dataclasses", "__future__", "typing"}, (name, roots)
    assert "Whisper encoder" in open(f"{folder}/README.md").read()


def test_whisper_config_objects_are_not_changed_in_place():
    backbone = WhisperConfig(**TINY_BACKBONES["whisper"])
    RACLConfig(backbone_config=backbone, whisper_window_seconds=2.0)
    assert backbone.max_source_positions == 1500


@pytest.mark.parametrize("mode", ["weighted", "gated", "attention", "last"])
def test_aggregation_layer_norm_normalises_each_hidden_state_over_its_channels(mode):
    from modeling_racl.modeling_racl import LayerAggregation

    torch.manual_seed(0)
    layers = torch.randn(2, 3, 5, 8)
    layers[:, 1, 2, 4] = 400.0  # a massive activation: one channel on one frame of one layer, as Whisper's middle layers
    plain, normed = LayerAggregation(mode, 3, 8, 4), LayerAggregation(mode, 3, 8, 4, layer_norm=True)
    normed.load_state_dict(plain.state_dict())
    expected, _ = plain(torch.nn.functional.layer_norm(layers, (8,)), None)
    combined, _ = normed(layers, None)
    torch.testing.assert_close(combined, expected)
    assert combined.abs().max() < 4  # at most sqrt(channels - 1), the spike included


def test_aggregation_layers_reads_only_the_listed_hidden_states_and_reloads(tmp_path):
    model = tiny_model("whisper", aggregation_layers=[2, 0]).eval()
    _, waves, mask = padded_batch([16000, 9000])
    with torch.no_grad():
        out = model.frontend.features(model.backbone, waves, mask)
        states = torch.stack(out.hidden_states, dim=1)
        logits = model(waves, attention_mask=mask).logits
        # the same head on a stack holding the two listed states only, in the listed order, gives the same logits
        alone = RACLForAudioClassification(tiny_config("whisper")).eval()
        picked = model(layer_states=states, layer_mask=out.frame_mask)
        assert picked.layer_weights.shape == (2, 2)
        states[:, 1] += 5.0  # a hidden state that is not listed changes nothing
        torch.testing.assert_close(model(layer_states=states, layer_mask=out.frame_mask).logits, logits)
        states[:, 0] += 5.0
        assert not torch.allclose(model(layer_states=states, layer_mask=out.frame_mask).logits, logits)
    assert alone.aggregation.layer_logits.shape == (3,) and model.aggregation.layer_logits.shape == (2,)
    model.save_pretrained(tmp_path)
    again = RACLForAudioClassification.from_pretrained(tmp_path).eval()
    assert again.config.aggregation_layers == [2, 0]
    with torch.no_grad():
        torch.testing.assert_close(again(waves, attention_mask=mask).logits, logits)


@pytest.mark.parametrize("layers", [[], [0, 0], [3], [-1], ["a"], [1.5]])
def test_aggregation_layers_must_name_distinct_hidden_states(layers):
    with pytest.raises(ValueError, match=r"aggregation_layers must list distinct hidden states of the backbone \(0 to 2\)"):
        tiny_config("whisper", aggregation_layers=layers)


@pytest.mark.parametrize("model_type", ["whisper", "wav2vec2"])
def test_spectral_branch_beside_the_encoder_is_padding_invariant_trains_and_reloads(model_type, tmp_path):
    model = tiny_model(model_type, spectral_branch=True, filterbank_bins=12).eval()
    assert model.config.min_input_samples == 512  # one filterbank window, longer than the encoder needs
    waves, x, mask = padded_batch([SR, int(1.3 * SR) + 77, int(0.5 * SR) + 5])
    with torch.no_grad():
        batched = model(x, attention_mask=mask).logits
        alone = torch.cat([model(w[None]).logits for w in waves])
        # the branch's frames computed beforehand (as a cache stores them) give the same logits
        out = model.frontend.features(model.backbone, x, mask)
        frames = model.spectral.frames(x, mask, out.hidden_states[0].shape[1])
        cached = model(layer_states=torch.stack(out.hidden_states, dim=1), layer_mask=out.frame_mask, spectral_states=frames).logits
        with pytest.raises(ValueError, match="give spectral_states with layer_states"):
            model(layer_states=torch.stack(out.hidden_states, dim=1), layer_mask=out.frame_mask)
    torch.testing.assert_close(batched, alone, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(cached, batched)
    assert frames.shape[-1] == 12 and model.head.projection.in_features == model.frontend.feature_dim + 12
    # the head reads the branch: other spectra, other logits
    with torch.no_grad():
        assert not torch.allclose(model(layer_states=torch.stack(out.hidden_states, dim=1), layer_mask=out.frame_mask, spectral_states=frames.flip(-1)).logits, batched)
    model.train()
    loss = model(x, attention_mask=mask, labels=torch.tensor([0, 1, 1]), is_reconstructed=torch.tensor([False, False, True])).loss
    loss.backward()
    assert model.head.projection.weight.grad[:, -12:].abs().sum() > 0
    model.eval().save_pretrained(tmp_path)  # the training pass moved the batch-norm statistics: compare anew
    again = RACLForAudioClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(again(x, attention_mask=mask).logits, model(x, attention_mask=mask).logits)


def test_spectral_branch_needs_an_encoder_and_a_dividing_hop():
    with pytest.raises(ValueError, match="spectral_branch goes beside a pretrained encoder"):
        RACLConfig(frontend="filterbank", spectral_branch=True)
    with pytest.raises(ValueError, match=r"frame hop \(320 samples\) must be a multiple of filterbank_hop \(150\)"):
        tiny_model("whisper", spectral_branch=True, filterbank_hop=150)


def test_spectral_branch_dropout_zeroes_the_encoder_features_of_some_clips_in_training_only():
    model = tiny_model("whisper", spectral_branch=True, filterbank_bins=12, spectral_branch_dropout=0.5)
    _, x, mask = padded_batch([SR] * 16)
    model.train()
    features, *_ = model.features(x, mask)
    encoder_part = features[..., :-12].abs().sum(dim=(1, 2))
    assert 0 < (encoder_part == 0).sum() < 16 and (features[..., -12:].abs().sum(dim=(1, 2)) > 0).all()
    model.eval()
    features, *_ = model.features(x, mask)
    assert (features[..., :-12].abs().sum(dim=(1, 2)) > 0).all()
    with pytest.raises(ValueError, match="needs spectral_branch=True"):
        tiny_config("whisper", spectral_branch_dropout=0.5)


def test_spectral_head_reads_the_bands_as_a_map_of_its_own_and_sums_the_two_heads_logits(tmp_path):
    model = tiny_model("whisper", spectral_branch=True, spectral_branch_head=True, filterbank_bins=12).eval()
    assert model.head.projection.in_features == model.frontend.feature_dim  # the bands are not joined as channels
    assert isinstance(model.spectral_head.projection, torch.nn.Identity)  # convolved over the 12 bands as they are
    waves, x, mask = padded_batch([SR, int(1.3 * SR) + 77, int(0.5 * SR) + 5])
    with torch.no_grad():
        out = model(x, attention_mask=mask)
        alone = torch.cat([model(w[None]).logits for w in waves])
        features, frame_mask, _, _, bands = model.features(x, mask)
        encoder_embedding, encoder_logits = model.head(features, frame_mask)
        band_embedding, band_logits = model.spectral_head(bands, frame_mask)
        states = model.frontend.features(model.backbone, x, mask)
        frames = model.spectral.frames(x, mask, states.hidden_states[0].shape[1])
        cached = model(layer_states=torch.stack(states.hidden_states, dim=1), layer_mask=states.frame_mask, spectral_states=frames).logits
    torch.testing.assert_close(out.logits, alone, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.logits, encoder_logits + band_logits)
    torch.testing.assert_close(out.embeddings, torch.cat([encoder_embedding, band_embedding], dim=-1))
    torch.testing.assert_close(cached, out.logits)
    model.train()
    loss = model(x, attention_mask=mask, labels=torch.tensor([0, 1, 1]), is_reconstructed=torch.tensor([False, False, True])).loss
    loss.backward()
    assert model.spectral_head.encoder[0].conv1.weight.grad.abs().sum() > 0 and model.head.projection.weight.grad.abs().sum() > 0
    model.eval().save_pretrained(tmp_path)
    again = RACLForAudioClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(again(x, attention_mask=mask).logits, model(x, attention_mask=mask).logits)
    with pytest.raises(ValueError, match="spectral_branch_head .* needs spectral_branch=True"):
        tiny_config("whisper", spectral_branch_head=True)


def test_spectral_branch_dropout_with_a_spectral_head_leaves_some_clips_to_the_spectral_head_in_training_only():
    model = tiny_model("whisper", spectral_branch=True, spectral_branch_head=True, filterbank_bins=12, spectral_branch_dropout=0.5)
    _, x, mask = padded_batch([SR] * 16)
    model.train()
    torch.manual_seed(0)
    out = model(x, attention_mask=mask)
    encoder_part = out.embeddings[:, : model.head.classifier.in_features]
    assert 0 < (encoder_part.abs().sum(dim=1) == 0).sum() < 16
    assert (out.embeddings[:, model.head.classifier.in_features:].abs().sum(dim=1) > 0).all()
    model.eval()
    assert (model(x, attention_mask=mask).embeddings[:, : model.head.classifier.in_features].abs().sum(dim=1) > 0).all()
