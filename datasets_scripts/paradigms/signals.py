"""Test signals and a speech-likeness measure for checking reconstructions without a corpus.

``synthetic_speech`` is a crude source-filter voice: a harmonic glottal source with a moving f0,
shaped by moving vowel formants, cut into syllables and pauses, with fricative noise between
syllables. It is no substitute for speech, but it has what a vocoder must preserve (harmonics, a
formant envelope, onsets, silences), so a broken reconstruction shows up on it.
"""

from __future__ import annotations

import numpy as np
import scipy.signal

from racl.labels import SAMPLING_RATE

# (F1, F2, F3) in Hz of five cardinal vowels, roughly those of an adult male voice.
VOWELS = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410]])
BANDWIDTHS = np.array([80.0, 100.0, 140.0])


def _f0_contour(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A falling phrase intonation with slow random wander, 85-220 Hz."""
    t = np.arange(n) / sr
    wander = scipy.signal.lfilter([0.002], [1, -0.998], rng.standard_normal(n)) * 40
    return np.clip(150 - 6 * (t % 2.5) + 25 * np.sin(2 * np.pi * 0.7 * t) + wander, 85, 220)


def _harmonic_source(f0: np.ndarray, sr: int) -> np.ndarray:
    """Sum of harmonics with a -6 dB/octave tilt, band-limited below Nyquist."""
    phase = 2 * np.pi * np.cumsum(f0) / sr
    source = np.zeros_like(f0)
    for k in range(1, int(sr / 2 / f0.max())):
        source += np.sin(k * phase) / k
    return source


def _formant_filter(x: np.ndarray, sr: int, syllable: int, rng: np.random.Generator) -> np.ndarray:
    """Cascade of three resonators whose formants glide from vowel to vowel, block by block."""
    block = sr // 100
    n_syll = len(x) // syllable + 2
    targets = VOWELS[rng.integers(0, len(VOWELS), n_syll)].astype(float)
    centres = (np.arange(n_syll) + 0.5) * syllable
    out = np.zeros_like(x)
    state = [np.zeros(2) for _ in range(3)]
    for start in range(0, len(x), block):
        seg = x[start : start + block]
        formants = [np.interp(start, centres, targets[:, j]) for j in range(3)]
        for j, (freq, bw) in enumerate(zip(formants, BANDWIDTHS)):
            r = np.exp(-np.pi * bw / sr)
            a = [1, -2 * r * np.cos(2 * np.pi * freq / sr), r * r]
            seg, state[j] = scipy.signal.lfilter([sum(a)], a, seg, zi=state[j])
        out[start : start + block] = seg
    return out


def _syllable_envelope(n: int, sr: int, syllable: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Voiced syllable envelope and a fricative envelope in the gaps; a pause every ~2 s."""
    voiced, frication = np.zeros(n), np.zeros(n)
    pos = int(0.1 * sr)
    while pos < n:
        length = int(syllable * rng.uniform(0.6, 0.9))
        end = min(pos + length, n)
        voiced[pos:end] = np.hanning(length)[: end - pos] ** 0.5
        gap = int(0.05 * sr)
        if rng.random() < 0.4:
            frication[end : end + gap] = np.hanning(gap)[: max(0, min(gap, n - end))]
        pos = end + gap + (int(0.3 * sr) if rng.random() < 0.1 else 0)
    return voiced, frication


def synthetic_speech(seconds: float = 2.0, sampling_rate: int = SAMPLING_RATE, seed: int = 0) -> np.ndarray:
    """A deterministic speech-like test clip, float32, peak 0.5."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sampling_rate)
    syllable = int(0.22 * sampling_rate)
    source = _harmonic_source(_f0_contour(n, sampling_rate, rng), sampling_rate)
    voiced = _formant_filter(source, sampling_rate, syllable, rng)
    hiss = scipy.signal.lfilter(*scipy.signal.butter(4, 3500, "highpass", fs=sampling_rate), rng.standard_normal(n))
    env_voiced, env_fric = _syllable_envelope(n, sampling_rate, syllable, rng)
    wave = voiced / (np.abs(voiced).max() + 1e-9) * env_voiced + 0.15 * hiss / (np.abs(hiss).max() + 1e-9) * env_fric
    wave += 1e-4 * rng.standard_normal(n)  # a recording's noise floor, so silences are not digital zero
    return (0.5 * wave / np.abs(wave).max()).astype(np.float32)


def log_mel(wave: np.ndarray, sampling_rate: int = SAMPLING_RATE, n_mels: int = 40,
            dynamic_range_db: float = 80.0) -> np.ndarray:
    """(frames, n_mels) log-mel in dB, floored ``dynamic_range_db`` below the clip's maximum.

    The floor keeps near-silent frames from dominating a correlation with their arbitrary noise.
    """
    import torch
    import torchaudio

    transform = torchaudio.transforms.MelSpectrogram(
        sample_rate=sampling_rate, n_fft=512, win_length=400, hop_length=160, n_mels=n_mels
    )
    power = transform(torch.as_tensor(np.asarray(wave, dtype=np.float32))).T.numpy().astype(np.float64)
    db = 10 * np.log10(np.maximum(power, 1e-20))
    return np.maximum(db, db.max() - dynamic_range_db)


def mel_similarity(reference: np.ndarray, candidate: np.ndarray, sampling_rate: int = SAMPLING_RATE, n_mels: int = 40) -> dict:
    """How much ``candidate`` keeps the spectro-temporal shape of ``reference``.

    Returns Pearson correlations of the full 40-band log-mel (``log_mel_r``) and of the per-frame
    energy contour (``energy_r``); both are level-invariant.
    """
    a = log_mel(reference, sampling_rate, n_mels)
    b = log_mel(candidate, sampling_rate, n_mels)
    frames = min(len(a), len(b))
    a, b = a[:frames], b[:frames]
    return {
        "log_mel_r": float(np.corrcoef(a.ravel(), b.ravel())[0, 1]),
        "energy_r": float(np.corrcoef(a.mean(1), b.mean(1))[0, 1]),
    }
