"""The one final processing every clip of the demo corpus goes through, whatever its class.

Bona fide clips, TTS spoofs and reconstructions all pass the same chain (docs/design.md#the-demo-corpus), so
that no recording, codec, level or silence difference separates the classes by itself. Each step
is there because :mod:`datasets_scripts.shortcut_check` measured the shortcut it removes:

1. mono, 16 kHz (``racl.audio.to_mono_16k``);
2. band-limit to 50 Hz – 7 kHz, zero-phase with steep raised-cosine edges: the originals have
   almost nothing above 7 kHz, the TTS engines plenty;
3. trim silence at both ends: 25 ms frames, 10 ms hop, "active" = within 40 dB of the loudest
   frame, 100 ms kept around the first and last active frame (TTS engines pad differently);
4. spectral tilt: a smooth (quadratic in log-frequency) equaliser gives every clip the same
   long-term spectral envelope, the median of the bona fide clips. The Dutch recordings are ~12 dB
   duller than the Czech ones and eSpeak is bright: brightness alone told them apart;
5. one fixed small room (RT60 0.4 s, direct-to-reverberant ratio 3 dB): TTS pauses are digital
   silence, recordings hold decaying speech there; no added noise imitates that (noise is far
   flatter than a speech tail), a room does, for every clip alike;
6. level: whole-clip RMS to -26 dBFS;
7. noise floor: speech-shaped noise tops the quietest frames (5th percentile) up to -50 dBFS; a
   clip already that noisy gets nothing;
8. one Ogg Vorbis round trip at one fixed quality (libsndfile level 0.5, ~45 kb/s at 16 kHz mono),
   the codec the originals came in;
9. clip to [-1, 1].

Where the reconstruction happens: by default every clip, reconstructions included, goes through
the whole chain once, reconstructions being made from the unprocessed source. A build may instead
apply steps 1-5 to each source *before* it is reconstructed (:func:`prepare_source`) and only the
channel part (band, tilt, steps 6-9) after: see ``finalize(..., source_prepared=True)``.

Fixed or varied: by default the room, the band's upper edge and the noise floor are the same for every
clip (the constants below). With ``vary`` (``postprocess.vary_channel``: some or all of ``VARY_PARTS``)
each clip draws its own from its seed (:class:`Channel`, ranges ``VARY_*``), independently of its class, so
a detector meets many rooms, bands and noise levels in both classes instead of one fixed chain.

Deterministic: the room is fixed (or drawn from a per-source or per-clip seed); the noise comes from
``numpy.random.default_rng(seed)``. Pass a per-clip seed (:func:`clip_seed` of the utt_id) so clips
do not share one noise sequence. Trimming changes the length, independently for a clip and its
reconstruction in the default order, once for both when the source is prepared first.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from racl.audio import to_mono_16k
from racl.labels import SAMPLING_RATE as SR

EPS = 1e-12
BAND_HZ = (50.0, 7000.0)
BAND_EDGE_HZ = (50.0, 500.0)  # width of the low and high raised-cosine transitions
FILTER_PAD = 2048  # zero padding so that FFT filters do not wrap around
FRAME, HOP = 400, 160  # 25 ms frames, 10 ms hop
ACTIVE_RANGE_DB = 40.0
MARGIN_S = 0.1
TILT_NFFT = 512
TILT_FIT_HZ = (100.0, 7000.0)
TILT_TARGET = (-1.3, -8.3, 0.0)  # dB vs log2(f / 1 kHz): the median fit of the bona fide clips
TILT_MAX_DB = 18.0
ROOM_RT60_S = 0.4
ROOM_DRR_DB = 3.0
ROOM_SEED = 1234
TARGET_DBFS = -26.0
NOISE_FLOOR_DBFS = -50.0
FLOOR_PERCENTILE = 5
VORBIS_COMPRESSION = 0.5  # libsndfile's scale: 0 = best quality, 1 = smallest file
# What a per-clip channel can vary, and the ranges each part is drawn from, uniformly; the fixed values lie inside.
VARY_PARTS = ("room", "band", "noise")
VARY_RT60_S = (0.2, 0.8)  # small rooms to a reverberant office
VARY_DRR_DB = (0.0, 9.0)  # far to close microphone
VARY_BAND_HIGH_HZ = (4000.0, 7000.0)  # wide-band telephony to the fixed chain's 7 kHz
VARY_NOISE_FLOOR_DBFS = (-60.0, -40.0)


@dataclass(frozen=True)
class Channel:
    """The room, upper band edge and noise floor one clip is given; the defaults are the fixed chain."""

    rt60_s: float = ROOM_RT60_S
    drr_db: float = ROOM_DRR_DB
    band_high_hz: float = BAND_HZ[1]
    noise_floor_dbfs: float = NOISE_FLOOR_DBFS

    @classmethod
    def draw(cls, seed: int, parts=VARY_PARTS) -> "Channel":
        """A channel drawn from ``seed``, on a stream of its own (apart from the noise and the room's tail);
        the ``parts`` not named keep the fixed chain's values. Every part is drawn whichever are kept, so a
        clip's room is the same whether or not its band varies too."""
        unknown = set(parts) - set(VARY_PARTS)
        if unknown:
            raise ValueError(f"unknown channel part(s) {sorted(unknown)}; choose from {list(VARY_PARTS)}")
        rng = np.random.default_rng([seed, 0xC4A])
        rt60, drr, high, floor = (float(rng.uniform(*r)) for r in (VARY_RT60_S, VARY_DRR_DB, VARY_BAND_HIGH_HZ,
                                                                  VARY_NOISE_FLOOR_DBFS))
        fixed = cls()
        return cls(rt60 if "room" in parts else fixed.rt60_s, drr if "room" in parts else fixed.drr_db,
                   high if "band" in parts else fixed.band_high_hz, floor if "noise" in parts else fixed.noise_floor_dbfs)


def band_gain(freqs: np.ndarray, high: float = BAND_HZ[1]) -> np.ndarray:
    """The pass band: raised-cosine edges of ``BAND_EDGE_HZ`` width, exactly 0 outside ``BAND_HZ``
    (or below ``high``, a clip's own upper edge).

    Steep on purpose: a gentle filter leaves the TTS engines' energy above 7 kHz, where the
    originals have none, in place as a shortcut.
    """
    low = BAND_HZ[0]
    rise = np.clip((freqs - low) / BAND_EDGE_HZ[0], 0, 1)
    fall = np.clip((high - freqs) / BAND_EDGE_HZ[1], 0, 1)
    return (0.5 - 0.5 * np.cos(np.pi * rise)) * (0.5 - 0.5 * np.cos(np.pi * fall))


def band_limit(wave: np.ndarray, high: float = BAND_HZ[1]) -> np.ndarray:
    """Zero-phase band-pass to ``BAND_HZ`` (upper edge ``high``) in the frequency domain."""
    n = wave.size + FILTER_PAD
    spectrum = np.fft.rfft(np.asarray(wave, dtype=np.float64), n) * band_gain(np.fft.rfftfreq(n, 1 / SR), high)
    return np.fft.irfft(spectrum, n)[: wave.size].astype(np.float32)


def frame_db(wave: np.ndarray) -> np.ndarray:
    """Frame energies (dB) on 25 ms frames with a 10 ms hop."""
    x = np.asarray(wave, dtype=np.float64)
    if x.size < FRAME:
        x = np.pad(x, (0, FRAME - x.size))
    frames = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP]
    return 10 * np.log10(np.mean(frames**2, axis=1) + EPS)


def active_frames(db: np.ndarray) -> np.ndarray:
    """Frames within ``ACTIVE_RANGE_DB`` of the loudest one."""
    return db > db.max() - ACTIVE_RANGE_DB


def trim_silence(wave: np.ndarray) -> np.ndarray:
    """Cut both ends to ``MARGIN_S`` around the first and last active frame."""
    active = np.flatnonzero(active_frames(frame_db(wave)))
    margin = int(MARGIN_S * SR)
    start = max(0, active[0] * HOP - margin)
    end = min(wave.size, active[-1] * HOP + FRAME + margin)
    return wave[start:end]


def long_term_spectrum(wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies, power) averaged over the active frames, 512-point FFT."""
    db = frame_db(wave)
    x = np.pad(np.asarray(wave, dtype=np.float64), (0, TILT_NFFT))
    frames = np.lib.stride_tricks.sliding_window_view(x, TILT_NFFT)[::HOP][: len(db)][active_frames(db)]
    power = np.mean(np.abs(np.fft.rfft(frames * np.hanning(TILT_NFFT), axis=1)) ** 2, axis=0)
    return np.fft.rfftfreq(TILT_NFFT, 1 / SR), power


def _octaves(freqs: np.ndarray) -> np.ndarray:
    return np.log2(np.clip(freqs, TILT_FIT_HZ[0], TILT_FIT_HZ[1]) / 1000.0)


def equalize_tilt(wave: np.ndarray) -> np.ndarray:
    """Give the clip the reference spectral envelope: fit a quadratic in log-frequency to its
    long-term spectrum and filter (zero-phase) by the difference to ``TILT_TARGET``.

    Only the coarse shape changes (brightness, dull microphones, a codec's roll-off), never the
    fine structure a detector should look at; the gain is clamped to ``TILT_MAX_DB``.
    """
    freqs, power = long_term_spectrum(wave)
    fit = (freqs >= TILT_FIT_HZ[0]) & (freqs <= TILT_FIT_HZ[1])
    coeffs = np.polyfit(_octaves(freqs[fit]), 10 * np.log10(power[fit] + EPS), len(TILT_TARGET) - 1)
    n = wave.size + FILTER_PAD
    grid = _octaves(np.fft.rfftfreq(n, 1 / SR))
    correction = np.polyval(np.asarray(TILT_TARGET), grid) - np.polyval(coeffs, grid)
    correction = np.clip(correction - correction.mean(), -TILT_MAX_DB, TILT_MAX_DB)
    spectrum = np.fft.rfft(wave.astype(np.float64), n) * 10 ** (correction / 20)
    return np.fft.irfft(spectrum, n)[: wave.size].astype(np.float32)


def room_response(rt60_s: float, drr_db: float, seed: int | np.random.Generator = ROOM_SEED, sr: int = SR,
                  gap_s: float = 0.002, training_rounding: bool = False) -> np.ndarray:
    """A room impulse response: a unit direct path, then an exponentially decaying Gaussian tail.

    The tail (Polack's statistical model of late reverberation) falls 60 dB in ``rt60_s`` seconds,
    starts ``gap_s`` after the direct path (first reflections arrive after the direct sound) and
    holds ``drr_db`` less energy than it. ``seed`` (an int, or a numpy Generator that is advanced)
    draws the tail. The build's rooms and the training augmentation's simulated rooms both come
    from here; measured RIRs add early reflections and frequency-dependent decay this model lacks.
    Not cached: a generator passed in must be advanced by every call.

    The build gets float64. ``training_rounding`` gives the augmentation float32, evaluated as it
    always was (``exp`` decay, energy ratio under the root): the two evaluations agree to float64
    rounding, but on rare draws that rounding flips one float32 sample, and one flipped sample in
    one training room was enough to change a demo run's weights from that step on.
    """
    if rt60_s <= 0:
        raise ValueError(f"rt60 must be positive, got {rt60_s}")
    n = max(int(rt60_s * sr), 2)
    t = np.arange(n) / sr
    draws = np.random.default_rng(seed).standard_normal(n)
    tail = draws * (np.exp(-3.0 * np.log(10.0) * t / rt60_s) if training_rounding else 10 ** (-3 * t / rt60_s))
    tail[: min(n - 1, max(1, int(gap_s * sr)))] = 0
    if training_rounding:
        tail *= np.sqrt(10.0 ** (-drr_db / 10.0) / max(float(np.sum(np.square(tail, dtype=np.float64))), 1e-20))
    else:
        tail *= 10 ** (-drr_db / 20) / max(np.sqrt(np.sum(tail**2)), 1e-10)
    tail[0] = 1.0
    return tail.astype(np.float32) if training_rounding else tail


def add_room(wave: np.ndarray, seed: int = ROOM_SEED, channel: Channel = Channel()) -> np.ndarray:
    """Convolve with :func:`room_response`: pauses then hold decaying speech, as in recordings,
    instead of the digital silence of TTS engines."""
    ir = room_response(channel.rt60_s, channel.drr_db, seed)
    n = wave.size + ir.size
    out = np.fft.irfft(np.fft.rfft(wave.astype(np.float64), n) * np.fft.rfft(ir, n), n)[: wave.size]
    return out.astype(np.float32)


def normalize_level(wave: np.ndarray) -> np.ndarray:
    """Scale so that the RMS of the (trimmed) clip is ``TARGET_DBFS``."""
    level = 10 * np.log10(np.mean(np.asarray(wave, dtype=np.float64) ** 2) + EPS)
    return (wave * 10 ** ((TARGET_DBFS - level) / 20)).astype(np.float32)


def shaped_noise(n: int, seed: int, high: float = BAND_HZ[1]) -> np.ndarray:
    """Speech-shaped Gaussian noise: the spectrum ``TILT_TARGET`` (the reference long-term speech
    spectrum) inside ``BAND_HZ`` (upper edge ``high``).

    Quiet frames of recordings hold room tone and speech tails with a speech-like spectrum; white
    or gently sloped noise in the TTS pauses would be far flatter and give the TTS away.
    """
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SR)
    gain = 10 ** (np.polyval(np.asarray(TILT_TARGET), _octaves(freqs)) / 20) * band_gain(freqs, high)
    return np.fft.irfft(spectrum * gain, n).astype(np.float32)


def raise_noise_floor(wave: np.ndarray, seed: int, channel: Channel = Channel()) -> np.ndarray:
    """Top up the quietest frames (``FLOOR_PERCENTILE``) to the channel's noise floor (``NOISE_FLOOR_DBFS``)
    with speech-shaped noise in the channel's band."""
    floor = 10 ** (np.percentile(frame_db(wave), FLOOR_PERCENTILE) / 10)
    missing = 10 ** (channel.noise_floor_dbfs / 10) - floor
    if missing <= 0:
        return wave
    noise = shaped_noise(wave.size, seed, channel.band_high_hz)
    noise *= np.sqrt(missing / (np.mean(noise.astype(np.float64) ** 2) + EPS))
    return (wave + noise).astype(np.float32)


def vorbis_roundtrip(wave: np.ndarray) -> np.ndarray:
    """Encode to Ogg Vorbis at ``VORBIS_COMPRESSION`` and decode back (same length)."""
    buffer = io.BytesIO()
    sf.write(buffer, wave, SR, format="OGG", subtype="VORBIS", compression_level=VORBIS_COMPRESSION)
    buffer.seek(0)
    decoded, _ = sf.read(buffer, dtype="float32")
    out = np.zeros_like(wave)
    out[: min(wave.size, decoded.size)] = decoded[: wave.size]
    return out


def clip_seed(utt_id: str) -> int:
    """A stable per-clip seed (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(utt_id.encode("utf-8")).digest()[:4], "little")


def source_room_seed(utt_id: str, seed: int = 0) -> int:
    """The seed of a source clip's own room (:func:`prepare_source`), apart from its noise seed."""
    return clip_seed(f"{seed}:room:{utt_id}")


def _mono_16k_band(wave: np.ndarray, sr: int) -> np.ndarray:
    """Steps 1-2, refusing a clip with nothing left in the band."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim == 2 and wave.shape[1] <= 8 < wave.shape[0]:
        wave = wave.T
    x = band_limit(to_mono_16k(wave, sr))
    if x.size == 0 or not np.any(np.abs(x) > 1e-6):
        raise ValueError("finalize: empty or silent audio (nothing in 50 Hz - 7 kHz)")
    return x


def prepare_source(wave: np.ndarray, sr: int, room_seed: int = ROOM_SEED, vary=()) -> np.ndarray:
    """Steps 1-5 only: the clip as a microphone in a room would pick it up.

    For builds that reconstruct *after* the room (``postprocess.before_reconstruction``): a
    vocoder or codec then works on a reverberant recording, as it does on a real one, and the
    room no longer smears the reconstruction's own (phase, temporal) traces. Finish such clips
    with ``finalize(..., source_prepared=True)``, and draw the room's tail per clip (``room_seed``
    from :func:`source_room_seed`; same RT60 and DRR): with one fixed room, every clip that was not
    resynthesised would carry that room's exact phase pattern and every reconstruction would lose
    it, a corpus fingerprint a detector can learn (measured: a linear probe on instantaneous-
    frequency statistics trained on diffusion and WORLD found Griffin-Lim at 2 % EER with one fixed
    room, 30 % with rooms drawn per clip). The default (``room_seed`` unset) is the one fixed room
    of the whole chain, where every clip, reconstructions included, gets it last. ``vary`` naming
    ``"room"``: its RT60 and direct-to-reverberant ratio are drawn from ``room_seed`` too (:meth:`Channel.draw`).
    """
    x = trim_silence(_mono_16k_band(wave, sr))
    return add_room(equalize_tilt(x), room_seed, Channel.draw(room_seed, vary))


def finalize(wave: np.ndarray, sr: int, seed: int = 0, source_prepared: bool = False, vary=()) -> np.ndarray:
    """Apply the whole chain to one clip at any rate; returns float32 mono at 16 kHz.

    ``wave``: (samples,), (channels, samples), or soundfile's (samples, channels) with <= 8 channels.
    ``source_prepared``: the clip (or the source it was reconstructed from) already went through
    :func:`prepare_source`; only the band limit and tilt are applied again (a reconstruction may
    add energy outside the band or change the brightness), then steps 6-9. No second trim or room.
    ``vary``: the parts of the clip's own channel drawn from ``seed`` (:class:`Channel`, ``VARY_PARTS``): its
    room (unless the source was prepared), its band's upper edge (applied after the room, as a transmission
    channel would) and its noise floor.
    """
    channel = Channel.draw(seed, vary)
    if source_prepared:
        x = equalize_tilt(_mono_16k_band(wave, sr))
    elif "room" in vary:  # the whole chain, with a room of the clip's own
        x = prepare_source(wave, sr, room_seed=clip_seed(f"room:{seed}"), vary=vary)  # not the noise's stream
    else:  # the whole chain in one go: one fixed room for every clip, applied after any reconstruction
        x = prepare_source(wave, sr)
    if channel.band_high_hz < BAND_HZ[1]:
        x = band_limit(x, channel.band_high_hz)
    x = normalize_level(x)
    x = raise_noise_floor(x, seed, channel)
    x = vorbis_roundtrip(x)
    return np.clip(x, -1.0, 1.0).astype(np.float32)
