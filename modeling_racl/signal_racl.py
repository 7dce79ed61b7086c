"""Fixed signal processing of the front-ends: sinc band-pass filters, triangular filterbanks, Whisper's log-mel,
and the spectral branch that reads a filterbank beside a pretrained encoder.

Written in torch because the Hub remote code may import only torch and transformers; each is tested against
its reference (torchaudio's filterbanks, ``transformers.WhisperFeatureExtractor``). Filters are built on the
CPU explicitly: transformers may construct the model under a meta-device context.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_racl import SAMPLING_RATE, WHISPER_HOP_LENGTH, WHISPER_N_FFT


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    """HTK mel scale → Hz."""
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def triangular_filters(bin_hz: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """(len(bin_hz), len(edges) - 2) triangles: filter k rises from edges[k] to edges[k+1] and falls to edges[k+2]."""
    width = edges.diff()
    offset = edges[None, :] - bin_hz[:, None]  # (freqs, num_filters + 2)
    rising = -offset[:, :-2] / width[:-1]
    falling = offset[:, 2:] / width[1:]
    return torch.clamp(torch.minimum(rising, falling), min=0.0)


# --------------------------------------------------------------------------------------------------
# Sinc front-end (AASIST's raw-waveform form, after RawNet2): fixed band-pass filters, no backbone
# --------------------------------------------------------------------------------------------------


def sinc_band_pass_filters(num_filters: int, kernel_size: int, sample_rate: int = SAMPLING_RATE) -> torch.Tensor:
    """(num_filters, kernel_size) Hamming-windowed ideal band-pass filters, band edges equally spaced in mel
    from 0 Hz to Nyquist: each filter is the difference of two windowed-sinc low-passes."""
    nyquist_mel = 2595.0 * math.log10(1.0 + sample_rate / 2.0 / 700.0)
    edges = mel_to_hz(torch.linspace(0.0, nyquist_mel, num_filters + 1, dtype=torch.float64, device="cpu"))
    t = torch.arange(kernel_size, dtype=torch.float64, device="cpu") - (kernel_size - 1) / 2  # symmetric support, in samples

    def low_pass(cutoff_hz: torch.Tensor) -> torch.Tensor:
        normalised = 2.0 * cutoff_hz[:, None] / sample_rate
        return normalised * torch.sinc(normalised * t[None, :])

    window = torch.hamming_window(kernel_size, periodic=False, dtype=torch.float64, device="cpu")
    return ((low_pass(edges[1:]) - low_pass(edges[:-1])) * window).float()


class SincFrontend(nn.Module):
    """Waveform (B, S) → |band-pass outputs| (B, S, num_filters): the (time x frequency) map AASIST reads.

    The filters are fixed (as in AASIST) and stored as a buffer so a saved model carries them. "Same"
    padding keeps one frame per sample, so the frame mask is the attention mask itself.
    """

    def __init__(self, num_filters: int, kernel_size: int):
        super().__init__()
        self.register_buffer("filters", sinc_band_pass_filters(num_filters, kernel_size).unsqueeze(1))

    def forward(self, waveform: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is not None:
            waveform = waveform * attention_mask.to(waveform.dtype)  # padding must be zeros, as when alone
        bands = F.conv1d(waveform.unsqueeze(1), self.filters.to(waveform.dtype), padding=self.filters.shape[-1] // 2)
        return bands.abs().transpose(1, 2)

    @staticmethod
    def frame_mask(num_frames: int, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
        return None if attention_mask is None else attention_mask.bool()  # one frame per sample


# --------------------------------------------------------------------------------------------------
# Filterbank front-end: log energies of fixed linear- or mel-spaced filters on a short-time spectrum
# --------------------------------------------------------------------------------------------------


def filterbank_matrix(scale: str, n_fft: int, num_bins: int, sample_rate: int = SAMPLING_RATE) -> torch.Tensor:
    """(n_fft // 2 + 1, num_bins) triangular filters from 0 Hz to Nyquist, linear or mel (HTK) spaced.

    The same triangles as torchaudio's ``linear_fbanks`` / ``melscale_fbanks(norm=None)`` (tested equal).
    """
    bin_hz = torch.linspace(0, sample_rate // 2, n_fft // 2 + 1, device="cpu")
    if scale == "linear":
        edges = torch.linspace(0.0, sample_rate / 2, num_bins + 2, device="cpu")
    else:
        edges = mel_to_hz(torch.linspace(0.0, 2595.0 * math.log10(1.0 + sample_rate / 2 / 700.0), num_bins + 2, device="cpu"))
    return triangular_filters(bin_hz, edges)


class FilterbankFrontend(nn.Module):
    """Waveform (B, S) → log filterbank energies (B, frames, num_bins): the (time x frequency) map AASIST reads.

    Frames are not centred (no edge padding): a frame exists only where a whole window fits, so the frames
    of a clip inside a zero-padded batch are exactly those of the clip alone, and ``frame_mask`` marks them.
    """

    def __init__(self, scale: str, n_fft: int, hop: int, num_bins: int):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        # A periodic Hann window is a view into a longer one: cloned, or safetensors refuses the shared storage.
        self.register_buffer("window", torch.hann_window(n_fft, device="cpu").clone())
        self.register_buffer("filters", filterbank_matrix(scale, n_fft, num_bins))

    def forward(self, waveform: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        spec = torch.stft(waveform, self.n_fft, self.hop, window=self.window.to(waveform.dtype), center=False, return_complex=True)
        power = spec.real.square() + spec.imag.square()  # (B, freqs, frames)
        return torch.log(power.transpose(1, 2) @ self.filters.to(power.dtype) + 1e-6)

    def frame_mask(self, num_frames: int, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
        if attention_mask is None:
            return None
        lengths = attention_mask.sum(dim=1)
        starts = torch.arange(num_frames, device=attention_mask.device) * self.hop
        return starts[None, :] + self.n_fft <= lengths[:, None]


# --------------------------------------------------------------------------------------------------
# Whisper's log-mel spectrogram (what WhisperFeatureExtractor computes), so a Whisper backbone takes
# the waveform like every other front-end
# --------------------------------------------------------------------------------------------------

_SLANEY_LOG_STEP = math.log(6.4) / 27.0  # the Slaney scale: linear to 1 kHz (15 mel), then logarithmic


def hz_to_slaney_mel(hz: torch.Tensor) -> torch.Tensor:
    linear = 3.0 * hz / 200.0
    return torch.where(hz >= 1000.0, 15.0 + torch.log(hz.clamp_min(1000.0) / 1000.0) / _SLANEY_LOG_STEP, linear)


def slaney_mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    linear = 200.0 * mel / 3.0
    return torch.where(mel >= 15.0, 1000.0 * torch.exp(_SLANEY_LOG_STEP * (mel - 15.0)), linear)


def whisper_mel_filters(num_mel_bins: int, n_fft: int = WHISPER_N_FFT, sample_rate: int = SAMPLING_RATE) -> torch.Tensor:
    """(n_fft // 2 + 1, num_mel_bins) Slaney-scale, Slaney-normalised (constant energy per filter) mel filters
    from 0 Hz to Nyquist: Whisper's (``mel_filter_bank(norm="slaney", mel_scale="slaney")``), computed in
    float64 as there."""
    bin_hz = torch.linspace(0, sample_rate // 2, n_fft // 2 + 1, dtype=torch.float64, device="cpu")
    top = hz_to_slaney_mel(torch.tensor(sample_rate / 2, dtype=torch.float64, device="cpu"))
    edges = slaney_mel_to_hz(torch.linspace(0.0, float(top), num_mel_bins + 2, dtype=torch.float64, device="cpu"))
    filters = triangular_filters(bin_hz, edges) * (2.0 / (edges[2:] - edges[:-2]))[None, :]
    return filters.float()


def whisper_log_mel(windows: torch.Tensor, window: torch.Tensor, mel_filters: torch.Tensor) -> torch.Tensor:
    """(N, samples) float32 windows → (N, num_mel_bins, samples // hop) log-mel, each window scaled as Whisper
    scales one input: log10 of the mel power floored at 1e-10 and at (its maximum - 8), then (x + 4) / 4.

    Frames are centred (reflect padding) and the last one dropped, as in ``WhisperFeatureExtractor``.
    """
    spec = torch.stft(windows, WHISPER_N_FFT, WHISPER_HOP_LENGTH, window=window, center=True, pad_mode="reflect", return_complex=True)
    power = spec[..., :-1].abs().square()  # (N, freqs, frames)
    log_mel = (mel_filters.T @ power).clamp_min(1e-10).log10()
    log_mel = torch.maximum(log_mel, log_mel.amax(dim=(1, 2), keepdim=True) - 8.0)
    return (log_mel + 4.0) / 4.0


class SpectralBranch(nn.Module):
    """The filterbank map of the waveform at the encoder's frame rate, for the head to read beside the encoder.

    ``frames`` is what a frozen encoder's cache stores next to its hidden states (racl.training.cached_states);
    ``forward`` normalises it per frame (the log energies sit far from the unit scale of layer-normed states).
    """

    def __init__(self, config, frame_hop: int):
        super().__init__()
        if frame_hop % config.filterbank_hop:
            raise ValueError(f"spectral_branch: the encoder's frame hop ({frame_hop} samples) must be a multiple of filterbank_hop ({config.filterbank_hop})")
        self.ratio = frame_hop // config.filterbank_hop
        self.filterbank = FilterbankFrontend(config.filterbank_scale, config.filterbank_n_fft, config.filterbank_hop, config.filterbank_bins)

    def frames(self, waveform: torch.Tensor, attention_mask: torch.Tensor | None, num_frames: int) -> torch.Tensor:
        """(B, S) → (B, num_frames, bins): each encoder frame the mean of ``ratio`` filterbank frames. Filterbank
        frames past a clip's end are zeroed first, so a clip gets the same frames alone as in a padded batch."""
        energies = self.filterbank(waveform)
        mask = self.filterbank.frame_mask(energies.shape[1], attention_mask)
        if mask is not None:
            energies = energies * mask.unsqueeze(-1).to(energies.dtype)
        energies = F.pad(energies, (0, 0, 0, (-energies.shape[1]) % self.ratio))
        pooled = energies.reshape(energies.shape[0], -1, self.ratio, energies.shape[-1]).mean(dim=2)
        # Non-centred filterbank frames end about one encoder frame short of the encoder's: the tail is zeros.
        return F.pad(pooled[:, :num_frames], (0, 0, 0, max(0, num_frames - pooled.shape[1])))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(frames, frames.shape[-1:])


__all__ = [
    "SincFrontend",
    "FilterbankFrontend",
    "sinc_band_pass_filters",
    "filterbank_matrix",
    "whisper_mel_filters",
    "whisper_log_mel",
    "SpectralBranch",
]
