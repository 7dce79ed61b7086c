"""racl-score: full-length scoring, formats, and one clear error line per bad file."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import speech_like

from racl.scoring import Scorer, format_results, window_spans


def test_shortest_input_is_the_front_end_receptive_field():
    from modeling_racl import RACLConfig

    assert RACLConfig().min_input_samples == 400  # XLS-R's convolutional feature encoder
    assert RACLConfig(frontend="sinc", sinc_kernel_size=129).min_input_samples == 129


def test_score_and_probability_are_the_models_own(tiny_model_dir):
    import torch

    scorer = Scorer.from_pretrained(str(tiny_model_dir), device="cpu", batch_size=2)  # a model of its own
    model = scorer.model
    model.config.calibration_scale, model.config.calibration_bias = 2.0, -0.5
    windows = [speech_like(0.8, 3), speech_like(0.5, 4)]
    with torch.inference_mode():
        batch = scorer.extractor(windows, sampling_rate=16000, padding=True, return_attention_mask=True, return_tensors="pt")
        expected = model.scores_from_logits(model(batch["input_values"], attention_mask=batch["attention_mask"]).logits)
    np.testing.assert_array_equal(scorer.score_windows(windows), expected.numpy())
    clip = scorer.score_waveform(windows[0])
    assert clip.p_bonafide == float(model.bonafide_probability(torch.tensor(clip.score, dtype=torch.float64)))
    assert clip.p_bonafide == pytest.approx(1 / (1 + np.exp(-(2.0 * clip.score - 0.5))), rel=1e-12)


def test_window_spans_cover_the_whole_clip():
    assert window_spans(100, 40, 20) == [(0, 40), (20, 60), (40, 80), (60, 100)]
    assert window_spans(90, 40, 20) == [(0, 40), (20, 60), (40, 80), (50, 90)]  # last window flush with the end
    assert window_spans(30, 40, 20) == [(0, 30)]


def test_scorer_long_clip_timeline_and_order(tiny_model_dir):
    scorer = Scorer.from_pretrained(str(tiny_model_dir), device="cpu", batch_size=3, window_seconds=1.0, hop_seconds=0.5)
    long_clip, short_clip = speech_like(3.3, 1), speech_like(0.6, 2)
    results = scorer.score_waveforms([long_clip, short_clip], ["long", "short"])
    assert [r.path for r in results] == ["long", "short"]
    assert len(results[0].windows) == 6 and results[0].windows[-1].end == pytest.approx(3.3)
    assert results[0].score == pytest.approx(np.mean([w.score for w in results[0].windows]))
    assert len(results[1].windows) == 1
    # the batched answer equals scoring each clip by itself
    assert scorer.score_waveform(short_clip).score == pytest.approx(results[1].score, abs=1e-4)
    for r in results:
        assert r.label == ("bonafide" if r.p_bonafide >= 0.5 else "spoof")


def make_bad_and_good_files(d):
    good = {}
    wave = speech_like(1.3, 3)
    for sr in (8000, 16000, 22050, 44100, 48000):
        good[f"sr{sr}.wav"] = speech_like(1.3, 3, sr)
    stereo = np.stack([wave, wave[::-1]], axis=1)
    for name, data, sr, kw in [
        ("stereo.wav", stereo, 16000, {}),
        ("silence.wav", np.zeros(16000, np.float32), 16000, {}),
        ("clip.flac", wave, 16000, {}),
        ("clip.ogg", wave, 16000, {}),
        ("clip.mp3", wave, 16000, {"format": "MP3"}),
    ]:
        good[name] = (data, sr, kw)
    for name, value in good.items():
        if isinstance(value, tuple):
            data, sr, kw = value
            sf.write(str(d / name), data, sr, **kw)
        else:
            sf.write(str(d / name), value, int(name[2:-4]))
    bad = {}
    (d / "empty.wav").write_bytes(b"")
    bad["empty.wav"] = "empty file"
    sf.write(str(d / "zero.wav"), np.zeros(0, np.float32), 16000)
    bad["zero.wav"] = "zero-length"
    (d / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" + bytes(range(256)) * 4)
    bad["corrupt.wav"] = "not a readable audio file"
    nan = wave.copy()
    nan[100:110] = np.nan
    nan[200] = np.inf
    sf.write(str(d / "nan.wav"), nan, 16000, subtype="FLOAT")
    bad["nan.wav"] = "NaN/Inf"
    (d / "notes.txt").write_text("this is not audio\n" * 50)
    bad["notes.txt"] = "not a readable audio file"
    bad["missing.wav"] = "no such file"
    sf.write(str(d / "tiny.wav"), wave[:300], 16000)
    bad["tiny.wav"] = "too short to score"
    return list(good), bad


def test_cli_bad_inputs_give_one_clear_line_each_and_the_rest_is_scored(tiny_model_dir, tmp_path):
    good, bad = make_bad_and_good_files(tmp_path)
    paths = [str(tmp_path / n) for n in [*good, *bad]]
    proc = subprocess.run(
        [sys.executable, "-m", "racl.scoring", "--model", str(tiny_model_dir), "--format", "json", *paths],
        capture_output=True, text=True, timeout=300,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1  # some files failed
    rows = {r["path"].split("/")[-1]: r for r in json.loads(proc.stdout)}
    assert list(rows) == [*good, *bad]  # input order kept
    for name in good:
        assert rows[name]["error"] == "" and np.isfinite(rows[name]["score"]), rows[name]
        assert 0.0 <= rows[name]["p_bonafide"] <= 1.0 and rows[name]["windows"]
    for name, reason in bad.items():
        assert reason in rows[name]["error"] and rows[name]["score"] is None, rows[name]
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("racl-score:")]
    assert len(error_lines) == len(bad)
    # resampling at the edge: a clip at 8 and 48 kHz decodes to (almost) the same 16 kHz duration
    assert rows["sr8000.wav"]["duration"] == pytest.approx(rows["sr48000.wav"]["duration"], abs=1e-3)


def test_cli_folder_and_table_csv_formats(tiny_model_dir, tmp_path, write_wav):
    write_wav("audio/a.wav", seconds=1.0, seed=1)
    write_wav("audio/sub/b.flac", seconds=1.0, seed=2)
    for fmt, check in [("table", lambda out: out.splitlines()[0].split() == ["path", "score", "p_bonafide", "label", "familiar", "error"]),
                       ("csv", lambda out: out.splitlines()[0] == "path,score,p_bonafide,label,familiar,error" and len(out.splitlines()) == 3)]:
        proc = subprocess.run([sys.executable, "-m", "racl.scoring", "--model", str(tiny_model_dir), "--format", fmt, str(tmp_path / "audio")],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert check(proc.stdout), proc.stdout
        assert "b.flac" in proc.stdout


def test_cli_unloadable_model_is_one_line(tmp_path, write_wav):
    path = write_wav("a.wav")
    proc = subprocess.run([sys.executable, "-m", "racl.scoring", "--model", str(tmp_path / "nope"), str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "cannot load model" in proc.stderr


def test_format_results_table_marks_errors():
    from racl.scoring import ClipScore

    text = format_results([ClipScore(path="x.wav", error="x.wav: empty file (0 bytes)")], "table")
    assert "empty file" in text.splitlines()[1]
