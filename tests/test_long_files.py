"""Long files scored piece by piece: the same windows and scores as the whole file, in memory that does not grow."""

import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import ROOT, speech_like

from racl.audio import load_audio
from racl.scoring import Scorer
from racl.streaming import stream_audio, streamable_seconds

SR = 16_000


@pytest.fixture()
def scorer(tiny_model_dir):
    return Scorer.from_pretrained(str(tiny_model_dir), device="cpu", batch_size=3, window_seconds=1.0, hop_seconds=0.5)


@pytest.mark.parametrize("seconds, piece", [(7.3, 0.7), (7.3, 3.0), (0.8, 0.3), (3.0, 1.0)])
def test_a_stream_gets_the_windows_and_scores_of_the_whole(scorer, seconds, piece):
    wave = speech_like(seconds, 5)
    whole = scorer.score_waveform(wave)
    step = int(piece * SR)
    streamed = scorer.score_stream((wave[i : i + step] for i in range(0, len(wave), step)), windows_per_step=2)
    assert [(w.start, w.end) for w in streamed.windows] == [(w.start, w.end) for w in whole.windows]
    np.testing.assert_allclose([w.score for w in streamed.windows], [w.score for w in whole.windows], atol=1e-5)
    assert streamed.score == pytest.approx(whole.score, abs=1e-5) and streamed.label == whole.label
    assert streamed.duration == pytest.approx(seconds, abs=1e-4)


def test_a_stream_with_the_speech_detector_equals_the_whole(tiny_model_dir):
    from test_vad import SENTENCE, espeak

    scorer = Scorer.from_pretrained(str(tiny_model_dir), device="cpu", batch_size=4, window_seconds=2.0, hop_seconds=1.0, vad=True)
    wave = np.concatenate([np.zeros(3 * SR, np.float32), espeak(SENTENCE), np.zeros(4 * SR, np.float32)])
    whole = scorer.score_waveform(wave)
    streamed = scorer.score_stream(wave[i : i + 12345] for i in range(0, len(wave), 12345))
    assert [w.speech for w in streamed.windows] == [w.speech for w in whole.windows]
    assert [w.votes for w in streamed.windows] == [w.votes for w in whole.windows] and not all(w.votes for w in whole.windows)
    assert streamed.score == pytest.approx(whole.score, abs=1e-5) and streamed.speech_seconds == whole.speech_seconds


@pytest.mark.parametrize("rate", [16000, 44100, 8000])
def test_streamed_decoding_equals_decoding_the_whole_file(tmp_path, rate):
    stereo = np.stack([speech_like(6.1, 1, rate), speech_like(6.1, 2, rate)], axis=1)
    path = tmp_path / f"clip{rate}.flac"
    sf.write(str(path), stereo, rate)
    pieces = list(stream_audio(str(path), block_seconds=1.1))
    assert len(pieces) == 6
    np.testing.assert_allclose(np.concatenate(pieces), load_audio(path), atol=1e-6)
    assert streamable_seconds(str(path)) == pytest.approx(6.1, abs=1e-3)


def test_files_longer_than_the_limit_are_streamed_with_the_same_result(scorer, tmp_path):
    path = tmp_path / "long.wav"
    sf.write(str(path), speech_like(9.0, 3), SR, subtype="FLOAT")
    whole = scorer.score_files([str(path)])[0]
    scorer.stream_seconds = 5.0
    streamed = scorer.score_files([str(path), str(tmp_path / "missing.wav")])
    assert streamed[0].score == pytest.approx(whole.score, abs=1e-5) and len(streamed[0].windows) == len(whole.windows)
    assert "no such file" in streamed[1].error


def write_long_wav(path, seconds: int):
    """A long 16-bit WAV written a minute at a time (speech-like audio repeated)."""
    minute = speech_like(60.0, 7)
    with sf.SoundFile(str(path), "w", samplerate=SR, channels=1, subtype="PCM_16") as f:
        for _ in range(seconds // 60):
            f.write(minute)


PEAK_RSS = """
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(proc.stderr[-2000:])
print(proc.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
"""


def score_peak_rss(model, path) -> tuple[int, float]:
    """racl-score on one file in its own process: (peak RSS in bytes, seconds)."""
    started = time.monotonic()
    command = [sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "racl.scoring", "--model", str(model), "--hop", "4", "--batch-size", "8", "--format", "csv", str(path)]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3000)
    code, rss = proc.stdout.split()
    assert code == "0", proc.stderr
    return int(rss), time.monotonic() - started


@pytest.mark.slow  # scores an hour of audio: a few minutes on two loaded cores
def test_an_hour_long_file_is_scored_in_bounded_memory(tiny_model_dir, tmp_path):
    # The process's own footprint (torch, transformers, the model) is measured on a one-second file in
    # the same run: it is 0.9-1.2 GB depending on the machine, so the bound is on what scoring adds.
    second, short, hour = tmp_path / "second.wav", tmp_path / "short.wav", tmp_path / "hour.wav"
    sf.write(str(second), speech_like(1.0, 7), SR, subtype="PCM_16")
    write_long_wav(short, 11 * 60)  # just over the streaming limit (10 minutes)
    write_long_wav(hour, 3600)
    base_rss, _ = score_peak_rss(tiny_model_dir, second)
    short_rss, _ = score_peak_rss(tiny_model_dir, short)
    hour_rss, hour_s = score_peak_rss(tiny_model_dir, hour)
    mib = 2**20
    print(f"peak RSS: 1 s {base_rss / mib:.0f} MiB, 11 min {short_rss / mib:.0f} MiB, 60 min {hour_rss / mib:.0f} MiB (scored in {hour_s:.0f} s)")
    assert hour_rss - base_rss < 128 * mib  # an hour costs little over one second (a decoded hour alone is 230 MB of float32)
    assert hour_rss - short_rss < 64 * mib  # it does not grow with the file's length


def encoded_samples(scorer, wave) -> tuple[int, object]:
    """(samples that went through the encoder, the result) for one clip."""
    seen = []
    handle = scorer.model.backbone.register_forward_hook(lambda module, args, out: seen.append(args[0].numel()))
    try:
        result = scorer.score_waveform(wave)
    finally:
        handle.remove()
    return sum(seen), result


def test_span_encoding_encodes_each_sample_about_once_and_keeps_the_timeline(tiny_model_dir):
    wave = speech_like(30.0, 4)
    alone = Scorer.from_pretrained(str(tiny_model_dir), device="cpu", batch_size=4, window_seconds=2.0, hop_seconds=1.0)
    spans = Scorer.from_pretrained(str(tiny_model_dir), device="cpu", batch_size=4, window_seconds=2.0, hop_seconds=1.0, span_windows=8)
    alone_samples, alone_result = encoded_samples(alone, wave)
    span_samples, span_result = encoded_samples(spans, wave)
    assert alone_samples == pytest.approx(2 * len(wave), rel=0.05)  # half-overlapping windows: every sample twice
    assert span_samples <= 1.15 * len(wave)  # spans of 8 windows overlap by one window only
    assert [(w.start, w.end) for w in span_result.windows] == [(w.start, w.end) for w in alone_result.windows]
    assert np.isfinite([w.score for w in span_result.windows]).all()
    streamed = spans.score_stream(wave[i : i + 40000] for i in range(0, len(wave), 40000))
    assert [(w.start, w.end) for w in streamed.windows] == [(w.start, w.end) for w in span_result.windows]


def test_a_span_of_one_window_is_that_window_scored_alone(tiny_model_dir):
    from racl.span_encoding import span_scores

    scorer = Scorer.from_pretrained(str(tiny_model_dir), device="cpu", window_seconds=2.0, hop_seconds=1.0)
    wave = speech_like(2.0, 6)
    one = span_scores(scorer.model, scorer.extractor, scorer.runner.autocast, wave, 0, [(0, len(wave))])
    np.testing.assert_allclose(one, scorer.score_windows([wave]), atol=1e-5)


def test_span_encoding_needs_a_wav2vec2_family_encoder(tmp_path):
    from modeling_racl import RACLConfig, RACLForAudioClassification
    from racl.export import export_model_folder

    folder = export_model_folder(RACLForAudioClassification(RACLConfig.from_json_file(str(ROOT / "configs/model/tiny_filterbank.json"))), tmp_path / "fb")
    with pytest.raises(ValueError, match="wav2vec2-family"):
        Scorer.from_pretrained(str(folder), device="cpu", span_windows=8)


def test_span_encoding_slices_the_spectral_branch_with_the_hidden_states(tmp_path):
    from modeling_racl import RACLConfig, RACLForAudioClassification
    from racl.export import export_model_folder
    from racl.span_encoding import span_scores

    config = RACLConfig.from_json_file(str(ROOT / "configs/model/tiny.json"))
    config.spectral_branch = True
    torch.manual_seed(0)
    folder = export_model_folder(RACLForAudioClassification(config), tmp_path / "spectral")
    scorer = Scorer.from_pretrained(str(folder), device="cpu", window_seconds=2.0, hop_seconds=1.0)
    wave = speech_like(2.0, 6)
    one = span_scores(scorer.model, scorer.extractor, scorer.runner.autocast, wave, 0, [(0, len(wave))])
    np.testing.assert_allclose(one, scorer.score_windows([wave]), atol=1e-5)
    spans = Scorer.from_pretrained(str(folder), device="cpu", window_seconds=2.0, hop_seconds=1.0, span_windows=4)
    assert np.isfinite([w.score for w in spans.score_waveform(speech_like(8.0, 3)).windows]).all()
