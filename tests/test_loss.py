"""RACL loss terms against a hand computation, and the edge cases that must not give NaN."""

import math

import numpy as np
import pytest
import torch

from modeling_racl import RACLConfig
from modeling_racl.loss_racl import RACLLoss, standard_contrastive_loss

TAU = 0.5
# 4 clips: original bona fide x2, a reconstruction of clip 0 (spoof), an original spoof
EMB = np.array([[1.0, 0.2, 0.0], [0.8, 0.5, 0.1], [0.3, 1.0, 0.2], [-0.5, 0.4, 1.0]])
LABELS = [0, 0, 1, 1]
RECON = [False, False, True, False]
LOGITS = np.array([[2.0, -1.0], [0.5, 0.3], [0.1, 1.2], [-0.7, 0.9]])


def _unit(v):
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v]


def _sim(z, i, j):
    return sum(a * b for a, b in zip(z[i], z[j])) / TAU


def _supcon_by_hand(z, anchors, positives_of, candidates_of):
    per_anchor = []
    for i in anchors:
        pos, cand = positives_of(i), candidates_of(i)
        if not pos or not (set(cand) - set(pos)):
            continue
        denom = sum(math.exp(_sim(z, i, a)) for a in cand)
        per_anchor.append(-sum(math.log(math.exp(_sim(z, i, p)) / denom) for p in pos) / len(pos))
    return sum(per_anchor) / len(per_anchor) if per_anchor else 0.0


def hand_terms():
    z = [_unit(list(r)) for r in EMB]
    n = len(z)
    cls = -sum(LOGITS[i][LABELS[i]] - math.log(sum(math.exp(v) for v in LOGITS[i])) for i in range(n)) / n
    std = _supcon_by_hand(
        z, range(n), lambda i: [j for j in range(n) if j != i and LABELS[j] == LABELS[i]], lambda i: [j for j in range(n) if j != i]
    )
    originals = [i for i in range(n) if LABELS[i] == 0 and not RECON[i]]
    recon = [i for i in range(n) if RECON[i]]
    enh = _supcon_by_hand(z, originals, lambda i: [j for j in originals if j != i], lambda i: [j for j in originals if j != i] + recon)
    reg_per_class = []
    for c in (0, 1):
        members = [z[i] for i in range(n) if LABELS[i] == c]
        mu = [sum(col) / len(members) for col in zip(*members)]
        reg_per_class.append(sum(sum((a - b) ** 2 for a, b in zip(m, mu)) for m in members) / len(members))
    reg = sum(reg_per_class) / 2
    return cls, std, enh, reg


def make_loss(**overrides):
    cfg = RACLConfig(backbone_config={"hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 1, "intermediate_size": 8}, racl_temperature=TAU, **overrides)
    return RACLLoss(cfg)


def test_each_term_matches_hand_computation():
    out = make_loss()(torch.tensor(LOGITS), torch.tensor(EMB), torch.tensor(LABELS), torch.tensor(RECON))
    cls, std, enh, reg = hand_terms()
    assert out.cls.item() == pytest.approx(cls, abs=1e-6)
    assert out.std.item() == pytest.approx(std, abs=1e-6)
    assert out.enh.item() == pytest.approx(enh, abs=1e-6)
    assert out.reg.item() == pytest.approx(reg, abs=1e-6)
    # the paper's weighting by default: (1 - alpha - beta) * Lcls
    assert out.loss.item() == pytest.approx(0.3 * cls + 0.6 * std + 0.1 * enh + 0.3 * reg, abs=1e-6)
    assert enh > 0 and std > 0 and reg > 0


def test_weights_come_from_config():
    args = (torch.tensor(LOGITS), torch.tensor(EMB), torch.tensor(LABELS), torch.tensor(RECON))
    cls, std, enh, reg = hand_terms()
    out = make_loss(racl_cls_weight=1.0, racl_alpha=1.0, racl_beta=2.0, racl_gamma=0.0)(*args)
    assert out.loss.item() == pytest.approx(cls + std + 2 * enh, abs=1e-6)
    out = make_loss(racl_cls_weight="1-alpha-beta", racl_alpha=0.2, racl_beta=0.3)(*args)  # recomputed from alpha and beta
    assert out.loss.item() == pytest.approx(0.5 * cls + 0.2 * std + 0.3 * enh + 0.3 * reg, abs=1e-6)


@pytest.mark.parametrize("value, alpha, match", [("paper", 0.6, "a number or '1 - alpha - beta'"), (-1.0, 0.6, ">= 0"),
                                                  ("1 - alpha - beta", 1.0, "racl_alpha \\+ racl_beta <= 1")])
def test_a_bad_cls_weight_is_one_error_at_config_time(value, alpha, match):
    with pytest.raises(ValueError, match=match):
        make_loss(racl_cls_weight=value, racl_alpha=alpha)


def test_cls_weight_survives_save_and_load(tmp_path):
    cfg = RACLConfig(racl_cls_weight=1.0)
    cfg.save_pretrained(tmp_path)
    assert RACLConfig.from_pretrained(tmp_path).racl_cls_weight == 1.0
    assert RACLConfig().racl_cls_weight == "1 - alpha - beta"


def test_pair_scope_restricts_enhanced_negatives_to_own_source():
    # clip 1 has no reconstruction of its own in the batch, so only clip 0 is an anchor
    source_ids = torch.tensor([0, 1, 0, 3])
    out = make_loss()(torch.tensor(LOGITS), torch.tensor(EMB), torch.tensor(LABELS), torch.tensor(RECON), source_ids)
    z = [_unit(list(r)) for r in EMB]
    expected = -math.log(math.exp(_sim(z, 0, 1)) / (math.exp(_sim(z, 0, 1)) + math.exp(_sim(z, 0, 2))))
    assert out.enh.item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    "labels,recon",
    [
        ([0, 0, 0, 0], [False] * 4),  # one class
        ([1, 1, 1], [True, False, True]),  # one class, spoof only
        ([0, 1, 0, 1], [False] * 4),  # no reconstructions
        ([0], [False]),  # a batch of one
        ([1], [True]),
        ([0, 1], [False, True]),  # one original bona fide: no positive for Lenh
    ],
)
def test_edge_cases_are_finite_and_backpropagate(labels, recon):
    emb = torch.randn(len(labels), 5, requires_grad=True)
    logits = torch.randn(len(labels), 2, requires_grad=True)
    out = make_loss()(logits, emb, torch.tensor(labels), torch.tensor(recon))
    for term in (out.loss, out.cls, out.std, out.enh, out.reg):
        assert torch.isfinite(term), out.terms()
    out.loss.backward()
    assert torch.isfinite(emb.grad).all() and torch.isfinite(logits.grad).all()
    if not any(recon):
        assert out.enh.item() == 0.0
    if len(set(labels)) == 1 and len(labels) > 1:
        assert out.std.item() == 0.0  # no negatives: nothing to contrast


def test_identical_embeddings_do_not_nan():
    emb = torch.ones(4, 3, requires_grad=True)
    out = make_loss()(torch.zeros(4, 2), emb, torch.tensor(LABELS), torch.tensor(RECON))
    out.loss.backward()
    assert torch.isfinite(out.loss) and torch.isfinite(emb.grad).all()
    assert out.reg.item() == pytest.approx(0.0, abs=1e-7)


def test_class_weights_change_cross_entropy():
    logits, labels = torch.tensor(LOGITS), torch.tensor(LABELS)
    plain = make_loss()(logits, torch.tensor(EMB), labels).cls
    weighted = make_loss(class_weights=[1.0, 3.0])(logits, torch.tensor(EMB), labels).cls
    expected = torch.nn.functional.cross_entropy(logits.float(), labels, weight=torch.tensor([1.0, 3.0]))
    assert weighted.item() == pytest.approx(expected.item(), abs=1e-6)
    assert weighted.item() != pytest.approx(plain.item())


def test_a_reconstruction_output_makes_lcls_a_three_way_cross_entropy():
    loss = RACLLoss(RACLConfig(reconstruction_class=True, racl_cls_weight=1.0, racl_alpha=0.0, racl_beta=0.0, racl_gamma=0.0))
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 1.5, 0.3], [0.2, -0.4, 1.1], [-0.3, 0.8, 0.6]])
    labels, recon = torch.tensor([0, 1, 1, 1]), torch.tensor([False, False, True, True])
    log_p = torch.log_softmax(logits, dim=1)
    by_hand = -(log_p[0, 0] + log_p[1, 1] + log_p[2, 2] + log_p[3, 2]) / 4  # reconstructions' target: the third output
    torch.testing.assert_close(loss(logits, torch.randn(4, 8), labels, recon).cls, by_hand)
    with pytest.raises(ValueError, match="class_weights weighs two classes"):
        RACLConfig(reconstruction_class=True, class_weights=[1.0, 2.0])


def test_a_reconstruction_class_separates_original_spoofs_from_reconstructions_in_lstd_and_lreg():
    def terms(three_way):
        config = RACLConfig(reconstruction_class=three_way, racl_cls_weight=1.0, racl_alpha=0.5, racl_beta=0.0, racl_gamma=0.5)
        logits = torch.zeros(4, 3 if three_way else 2)
        # two bona fide clips at one point; an original spoof and a reconstruction far apart from each other
        z = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        return RACLLoss(config)(logits, z, torch.tensor([0, 0, 1, 1]), torch.tensor([False, False, False, True]))

    two, three = terms(False), terms(True)
    assert two.reg > 0 and three.reg.item() == pytest.approx(0.0, abs=1e-7)  # as three classes every class is one point
    assert three.std < two.std  # the spoof and the reconstruction are no longer positives of each other
    torch.testing.assert_close(three.std, standard_contrastive_loss(torch.nn.functional.normalize(torch.eye(3)[[0, 0, 1, 2]], dim=-1), torch.tensor([0, 0, 1, 2]), 0.07))


@pytest.mark.parametrize("key", ["reconstruction_class", "spectral_branch_head", "spectral_branch", "aggregation_layer_norm"])
def test_a_switch_given_as_a_string_is_one_clear_error(key):
    with pytest.raises(ValueError, match=f"{key} must be true or false, got 'yes'"):
        RACLConfig(**{key: "yes"})
