"""The front-ends that replace the XLS-R backbone when training from scratch: AASIST's raw-waveform sinc
filters (``frontend="sinc"``) and log filterbank energies of a short-time spectrum (``frontend="filterbank"``)."""

import numpy as np
import pytest
import torch

from conftest import ROOT, run_python, speech_like
from modeling_racl import RACLConfig, RACLForAudioClassification
from modeling_racl.signal_racl import FilterbankFrontend, SincFrontend, filterbank_matrix, sinc_band_pass_filters

SR = 16_000
TINY_SINC = ROOT / "configs" / "model" / "tiny_sinc.json"
TINY_FILTERBANK = ROOT / "configs" / "model" / "tiny_filterbank.json"


@pytest.fixture(params=[TINY_SINC, TINY_FILTERBANK], ids=["sinc", "filterbank"])
def scratch_model(request):
    torch.manual_seed(0)
    return RACLForAudioClassification(RACLConfig.from_json_file(str(request.param)))


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


@pytest.mark.parametrize("scale", ["linear", "mel"])
def test_filterbank_bins_cover_the_spectrum_in_order(scale):
    bank = filterbank_matrix(scale, n_fft=512, num_bins=40)
    assert bank.shape == (257, 40) and (bank >= 0).all()
    centres = bank.argmax(dim=0)
    assert (centres.diff() > 0).all() and centres[0] < 10 and centres[-1] > 224  # low to high: ~0 Hz to above 7 kHz
    widths = (bank > 0).sum(dim=0).float()
    if scale == "mel":
        assert widths[-1] > 4 * widths[0]  # mel: narrow low bands, wide high bands
    else:
        assert widths.max() - widths.min() <= 2  # linear: equal resolution


@pytest.mark.parametrize("n_fft,num_bins", [(512, 60), (400, 40), (256, 16)])
def test_filterbanks_equal_torchaudios(n_fft, num_bins):
    # Written out because the remote code imports only torch and transformers; torchaudio is the reference.
    import torchaudio

    n_freqs = n_fft // 2 + 1
    reference = {
        "linear": torchaudio.functional.linear_fbanks(n_freqs, 0.0, SR / 2, num_bins, SR),
        "mel": torchaudio.functional.melscale_fbanks(n_freqs, 0.0, SR / 2, num_bins, SR, norm=None, mel_scale="htk"),
    }
    for scale, expected in reference.items():
        torch.testing.assert_close(filterbank_matrix(scale, n_fft, num_bins), expected, atol=0, rtol=0)


@pytest.mark.parametrize("tone_hz", [300.0, 1000.0, 3000.0, 6000.0])
def test_a_tone_peaks_in_the_filterbank_bin_centred_nearest_to_it(tone_hz):
    frontend = FilterbankFrontend("linear", n_fft=512, hop=160, num_bins=40)
    t = torch.arange(SR) / SR
    log_energies = frontend(torch.sin(2 * np.pi * tone_hz * t)[None])
    assert log_energies.shape == (1, (SR - 512) // 160 + 1, 40)
    centres_hz = frontend.filters.argmax(dim=0).float() * SR / 512
    assert int(log_energies[0].mean(dim=0).argmax()) == int((centres_hz - tone_hz).abs().argmin())


def test_filterbank_frame_mask_keeps_only_whole_windows():
    frontend = FilterbankFrontend("mel", n_fft=400, hop=160, num_bins=20)
    lengths = torch.tensor([16_000, 560, 559])
    mask = frontend.frame_mask(99, (torch.arange(16_000)[None] < lengths[:, None]).long())
    # a clip of n samples has (n - 400) // 160 + 1 whole windows
    assert mask.sum(dim=1).tolist() == [98, 2, 1]


def test_scratch_model_trains_and_masks_padding(scratch_model):
    waves = [torch.randn(n, generator=torch.Generator().manual_seed(n)) for n in (SR, int(1.7 * SR), int(0.4 * SR) + 7)]
    x = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
    mask = (torch.arange(x.shape[1])[None] < torch.tensor([len(w) for w in waves])[:, None]).long()
    out = scratch_model.train()(x, attention_mask=mask, labels=torch.tensor([0, 1, 1]), is_reconstructed=torch.tensor([False, True, False]))
    assert out.logits.shape == (3, 2) and out.embeddings.shape == (3, scratch_model.config.embedding_dim)
    assert out.hidden_states is None and out.layer_weights is None
    out.loss.backward()
    assert scratch_model.head.classifier.weight.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in scratch_model.backbone.parameters())  # fixed filters: a buffer
    scratch_model.eval()
    with torch.no_grad():
        batched = scratch_model(x, attention_mask=mask).logits
        alone = torch.cat([scratch_model(w[None]).logits for w in waves])
    torch.testing.assert_close(batched, alone, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "bad",
    [
        {"frontend": "lfcc"},
        {"frontend": "sinc", "sinc_kernel_size": 128},
        {"aasist_block_pool": 0},
        {"frontend": "filterbank", "filterbank_scale": "bark"},
        {"frontend": "filterbank", "filterbank_bins": 300, "filterbank_n_fft": 512},
        {"frontend": "filterbank", "filterbank_hop": 0},
    ],
)
def test_front_end_config_errors_name_the_value(bad):
    with pytest.raises(ValueError, match="|".join(str(v) for v in bad.values())):
        RACLConfig(**bad)


@pytest.mark.parametrize("config", [TINY_SINC, TINY_FILTERBANK], ids=["sinc", "filterbank"])
def test_scratch_front_ends_have_no_pretrained_backbone(config):
    with pytest.raises(ValueError, match="no pretrained backbone"):
        RACLForAudioClassification.from_pretrained_backbone(RACLConfig.from_json_file(str(config)), "facebook/wav2vec2-xls-r-300m")


LOAD = """
import numpy as np, torch
from transformers import AutoModelForAudioClassification
model = AutoModelForAudioClassification.from_pretrained({folder!r}, trust_remote_code=True).eval()
with torch.no_grad():
    np.save({out!r}, model(torch.from_numpy(np.load({inputs!r}))).logits.numpy())
"""


def test_scratch_model_round_trips_through_a_hub_folder_in_a_fresh_process(scratch_model, tmp_path):
    from transformers import AutoModelForAudioClassification

    from racl.export import export_model_folder

    folder = export_model_folder(scratch_model.eval(), tmp_path / "scratch-racl")
    x = np.stack([speech_like(1.0, 1), speech_like(1.0, 2)])
    np.save(tmp_path / "x.npy", x)
    reloaded = AutoModelForAudioClassification.from_pretrained(folder, trust_remote_code=True).eval()
    torch.testing.assert_close(reloaded.backbone.filters, scratch_model.backbone.filters, atol=0, rtol=0)
    with torch.no_grad():
        original = scratch_model(torch.from_numpy(x)).logits.numpy()
        expected = reloaded(torch.from_numpy(x)).logits.numpy()
    np.testing.assert_allclose(expected, original, atol=1e-6)  # same weights; kernels may sum in another order
    proc = run_python(LOAD.format(folder=str(folder), inputs=str(tmp_path / "x.npy"), out=str(tmp_path / "y.npy")), cwd=tmp_path, env={"PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected)
    assert scratch_model.config.frontend in (folder / "README.md").read_text().lower()
