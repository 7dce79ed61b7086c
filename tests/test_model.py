"""RACL model on a tiny random-initialised config: shapes, masks, aggregation modes, freezing."""

import pytest
import torch

from modeling_racl import RACLConfig, RACLForAudioClassification
from modeling_racl.configuration_racl import XLSR_300M

SR = 16_000


def masked_batch(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    waves = [torch.randn(n, generator=g) for n in lengths]
    x = torch.zeros(len(lengths), max(lengths))
    mask = torch.zeros_like(x, dtype=torch.long)
    for i, w in enumerate(waves):
        x[i, : len(w)] = w
        mask[i, : len(w)] = 1
    return waves, x, mask


def test_forward_backward_variable_length_masked_batch(tiny_model):
    _, x, mask = masked_batch([SR, int(1.6 * SR), int(0.7 * SR)])
    out = tiny_model.train()(x, attention_mask=mask, labels=torch.tensor([0, 1, 1]), is_reconstructed=torch.tensor([False, True, False]))
    assert out.logits.shape == (3, 2)
    assert out.embeddings.shape == (3, tiny_model.config.embedding_dim)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    for name in ("head.classifier.weight", "aggregation.layer_logits", "backbone.encoder.layers.0.attention.q_proj.weight"):
        grad = dict(tiny_model.named_parameters())[name].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name


def test_padded_batch_gives_the_same_logits_as_each_clip_alone(tiny_model):
    waves, x, mask = masked_batch([SR, int(2.3 * SR), int(0.5 * SR) + 123])
    tiny_model.eval()
    with torch.no_grad():
        batched = tiny_model(x, attention_mask=mask).logits
        alone = torch.cat([tiny_model(w[None], attention_mask=torch.ones(1, len(w), dtype=torch.long)).logits for w in waves])
    torch.testing.assert_close(batched, alone, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("mode", ["weighted", "gated", "attention", "last"])
def test_each_aggregation_mode(tiny_config, mode):
    cfg = RACLConfig.from_dict({**tiny_config.to_dict(), "aggregation": mode})
    model = RACLForAudioClassification(cfg).eval()
    waves, x, mask = masked_batch([SR, int(1.5 * SR)])
    with torch.no_grad():
        out = model(x, attention_mask=mask)
        alone = model(waves[0][None]).logits
    n_layers = cfg.backbone_config.num_hidden_layers + 1
    assert out.logits.shape == (2, 2)
    assert out.layer_weights.shape == (2, n_layers)
    torch.testing.assert_close(out.layer_weights.sum(dim=1), torch.ones(2))
    torch.testing.assert_close(out.logits[:1], alone, atol=1e-4, rtol=1e-4)
    model.train()(x, attention_mask=mask, labels=torch.tensor([0, 1])).loss.backward()


@pytest.mark.parametrize("seconds", [1.0, 4.0, 13.7])
def test_aasist_head_output_shape_any_length(tiny_model, seconds):
    x = torch.randn(2, int(seconds * SR))
    with torch.no_grad():
        out = tiny_model.eval()(x)
    assert out.logits.shape == (2, 2)
    assert out.embeddings.shape == (2, 5 * tiny_model.config.aasist_gat_dims[1])
    assert torch.isfinite(out.logits).all()


def test_very_short_input_still_scores(tiny_model):
    with torch.no_grad():
        out = tiny_model.eval()(torch.randn(1, 800))  # 50 ms: two backbone frames
    assert out.logits.shape == (1, 2) and torch.isfinite(out.logits).all()


def test_hidden_states_only_when_asked(tiny_model):
    x = torch.randn(1, SR)
    assert tiny_model(x).hidden_states is None
    out = tiny_model(x, output_hidden_states=True)
    assert len(out.hidden_states) == tiny_model.config.backbone_config.num_hidden_layers + 1


def test_freezing(tiny_model):
    tiny_model.freeze_feature_encoder()
    assert not any(p.requires_grad for p in tiny_model.backbone.feature_extractor.parameters())
    assert all(p.requires_grad for p in tiny_model.backbone.encoder.parameters())
    tiny_model.freeze_backbone()
    assert not any(p.requires_grad for p in tiny_model.backbone.parameters())
    assert all(p.requires_grad for p in tiny_model.head.parameters())


def test_gradient_checkpointing_passthrough(tiny_model):
    tiny_model.activation_checkpointing_enable()
    assert tiny_model.backbone.encoder.gradient_checkpointing
    out = tiny_model.train()(torch.randn(2, SR), labels=torch.tensor([0, 1]))
    out.loss.backward()
    assert tiny_model.head.classifier.weight.grad is not None


def test_scores_and_calibrated_probability(tiny_model):
    logits = torch.tensor([[2.0, -1.0], [0.0, 1.0]])
    scores = tiny_model.scores_from_logits(logits)
    torch.testing.assert_close(scores, torch.tensor([3.0, -1.0]))
    torch.testing.assert_close(tiny_model.bonafide_probability(scores), logits.softmax(-1)[:, 0])  # default = softmax


def test_default_config_is_xlsr_300m_architecture():
    cfg = RACLConfig()
    bb = cfg.backbone_config
    assert cfg.backbone_name_or_path == XLSR_300M
    assert (bb.hidden_size, bb.num_hidden_layers, bb.num_attention_heads, bb.do_stable_layer_norm) == (1024, 24, 16, True)
    assert cfg.id2label == {0: "bonafide", 1: "spoof"} and cfg.label2id == {"bonafide": 0, "spoof": 1}
    assert (cfg.racl_alpha, cfg.racl_beta, cfg.racl_gamma) == (0.6, 0.1, 0.3)


@pytest.mark.parametrize(
    "bad",
    [{"aggregation": "mean"}, {"racl_enh_negatives": "all"}, {"class_weights": [1.0]}, {"aasist_encoder_channels": [[1, 8], [4, 8]]}],
)
def test_bad_config_values_are_refused(bad):
    with pytest.raises(ValueError):
        RACLConfig(**bad)


def test_from_pretrained_backbone_loads_weights(tmp_path, tiny_config):
    from transformers import Wav2Vec2Model

    torch.manual_seed(1)
    Wav2Vec2Model(tiny_config.backbone_config).save_pretrained(tmp_path / "bb")
    model = RACLForAudioClassification.from_pretrained_backbone(tiny_config, str(tmp_path / "bb"))
    reference = Wav2Vec2Model.from_pretrained(tmp_path / "bb")
    torch.testing.assert_close(model.backbone.encoder.layers[0].attention.q_proj.weight, reference.encoder.layers[0].attention.q_proj.weight)


def test_fine_tuning_a_model_folder_builds_its_loss_with_the_overrides(tmp_path, tiny_model):
    from racl.training.config import ConfigError, load_train_config
    from racl.training.model import build_model

    tiny_model.save_pretrained(tmp_path / "m")
    cfg = load_train_config(None, [f"model.config={tmp_path / 'm'}", "model.overrides.racl_cls_weight=0.25", "model.overrides.racl_alpha=0.5"])
    model = build_model(cfg)
    assert model.config.racl_alpha == 0.5 and model.loss_fn.cls_weight == 0.25 and model.loss_fn.alpha == 0.5
    with pytest.raises(ConfigError, match="no config field racl_alhpa"):
        build_model(load_train_config(None, [f"model.config={tmp_path / 'm'}", "model.overrides.racl_alhpa=0.5"]))


def test_a_reconstruction_output_keeps_two_logits_and_reloads(tiny_config, tmp_path):
    model = RACLForAudioClassification(RACLConfig.from_dict({**tiny_config.to_dict(), "reconstruction_class": True})).eval()
    assert model.head.classifier.out_features == 3
    _, x, mask = masked_batch([SR, int(1.5 * SR)])
    with torch.no_grad():
        out = model(x, attention_mask=mask)
        outputs = model.head.classifier(out.embeddings)  # the three outputs (readout dropout is off in eval)
    assert out.logits.shape == (2, 2)
    torch.testing.assert_close(out.logits[:, 0], outputs[:, 0])
    torch.testing.assert_close(out.logits[:, 1], outputs[:, 1:].logsumexp(dim=1))  # p(spoof) = p(original) + p(recon)
    model.train()
    loss = model(x, attention_mask=mask, labels=torch.tensor([0, 1]), is_reconstructed=torch.tensor([False, True])).loss
    loss.backward()
    assert model.head.classifier.weight.grad[2].abs().sum() > 0  # the reconstruction output is trained
    with pytest.raises(ValueError, match="give is_reconstructed with labels"):
        model(x, attention_mask=mask, labels=torch.tensor([0, 1]))
    model.eval().save_pretrained(tmp_path)
    again = RACLForAudioClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(again(x, attention_mask=mask).logits, model(x, attention_mask=mask).logits)
