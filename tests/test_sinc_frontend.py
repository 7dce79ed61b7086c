"""AASIST's raw-waveform sinc front-end as the alternative to the XLS-R backbone (``frontend="sinc"``)."""

import numpy as np
import pytest
import torch

from conftest import ROOT, run_python, speech_like
from modeling_racl import RACLConfig, RACLForAudioClassification
from modeling_racl.modeling_racl import SincFrontend, sinc_band_pass_filters

SR = 16_000
TINY_SINC = ROOT / "configs" / "model" / "tiny_sinc.json"


@pytest.fixture()
def sinc_model():
    torch.manual_seed(0)
    return RACLForAudioClassification(RACLConfig.from_json_file(str(TINY_SINC)))


def test_band_pass_filters_sum_to_a_unit_impulse():
    # Adjacent bands share edges, so the sum telescopes to low_pass(Nyquist) - low_pass(0) = sinc(t) at
    # integer t times the window: 1 at the centre tap, 0 elsewhere.
    filters = sinc_band_pass_filters(num_filters=30, kernel_size=65)
    impulse = torch.zeros(65)
    impulse[32] = 1.0
    torch.testing.assert_close(filters.sum(dim=0), impulse, atol=1e-6, rtol=0)
    torch.testing.assert_close(filters, filters.flip(-1))  # symmetric: linear phase


@pytest.mark.parametrize("tone_hz", [300.0, 1000.0, 3000.0, 6000.0])
def test_a_tone_excites_the_band_that_contains_it(tone_hz):
    num_filters = 20
    mel = lambda hz: 2595 * np.log10(1 + hz / 700)  # noqa: E731
    edges_mel = np.linspace(0, mel(SR / 2), num_filters + 1)
    expected_band = int(np.searchsorted(edges_mel, mel(tone_hz)) - 1)
    t = torch.arange(SR) / SR
    bands = SincFrontend(num_filters, kernel_size=257)(torch.sin(2 * np.pi * tone_hz * t)[None])
    energy = bands[0, 1000:-1000].pow(2).mean(dim=0)
    assert int(energy.argmax()) == expected_band


def test_sinc_model_trains_and_masks_padding(sinc_model):
    waves = [torch.randn(n, generator=torch.Generator().manual_seed(n)) for n in (SR, int(1.7 * SR), int(0.4 * SR) + 7)]
    x = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
    mask = (torch.arange(x.shape[1])[None] < torch.tensor([len(w) for w in waves])[:, None]).long()
    out = sinc_model.train()(x, attention_mask=mask, labels=torch.tensor([0, 1, 1]), is_reconstructed=torch.tensor([False, True, False]))
    assert out.logits.shape == (3, 2) and out.embeddings.shape == (3, sinc_model.config.embedding_dim)
    assert out.hidden_states is None and out.layer_weights is None
    out.loss.backward()
    assert sinc_model.head.classifier.weight.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in sinc_model.backbone.parameters())  # fixed filters: a buffer
    sinc_model.eval()
    with torch.no_grad():
        batched = sinc_model(x, attention_mask=mask).logits
        alone = torch.cat([sinc_model(w[None]).logits for w in waves])
    torch.testing.assert_close(batched, alone, atol=1e-4, rtol=1e-4)


def test_sinc_config_is_validated_and_has_no_pretrained_backbone():
    for bad in ({"frontend": "lfcc"}, {"frontend": "sinc", "sinc_kernel_size": 128}, {"aasist_block_pool": 0}):
        with pytest.raises(ValueError):
            RACLConfig(**bad)
    with pytest.raises(ValueError, match="no pretrained backbone"):
        RACLForAudioClassification.from_pretrained_backbone(RACLConfig.from_json_file(str(TINY_SINC)), "facebook/wav2vec2-xls-r-300m")


LOAD = """
import numpy as np, torch
from transformers import AutoModelForAudioClassification
model = AutoModelForAudioClassification.from_pretrained({folder!r}, trust_remote_code=True).eval()
with torch.no_grad():
    np.save({out!r}, model(torch.from_numpy(np.load({inputs!r}))).logits.numpy())
"""


def test_sinc_model_round_trips_through_a_hub_folder_in_a_fresh_process(sinc_model, tmp_path):
    from transformers import AutoModelForAudioClassification

    from racl.export import export_model_folder

    folder = export_model_folder(sinc_model.eval(), tmp_path / "sinc-racl")
    x = np.stack([speech_like(1.0, 1), speech_like(1.0, 2)])
    np.save(tmp_path / "x.npy", x)
    reloaded = AutoModelForAudioClassification.from_pretrained(folder, trust_remote_code=True).eval()
    torch.testing.assert_close(reloaded.backbone.filters, sinc_model.backbone.filters, atol=0, rtol=0)
    with torch.no_grad():
        original = sinc_model(torch.from_numpy(x)).logits.numpy()
        expected = reloaded(torch.from_numpy(x)).logits.numpy()
    np.testing.assert_allclose(expected, original, atol=1e-6)  # same weights; kernels may sum in another order
    proc = run_python(LOAD.format(folder=str(folder), inputs=str(tmp_path / "x.npy"), out=str(tmp_path / "y.npy")), cwd=tmp_path, env={"PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected)
    assert "sinc" in (folder / "README.md").read_text().lower()
