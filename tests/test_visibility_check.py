"""The visibility check: a reconstruction that changes the spectrum is told from its source, one that
leaves it alone is not; the CLI pairs rows by ``source_id`` and names its groups by source kind."""

import io

import numpy as np
import pytest
import scipy.signal
import soundfile as sf

from datasets_scripts import visibility_check
from datasets_scripts.paradigms.signals import synthetic_speech

SR = 16_000
N_PAIRS = 16


def _sources():
    return [synthetic_speech(1.0, SR, seed=s) for s in range(N_PAIRS)]


def _low_pass(wave):
    return scipy.signal.sosfiltfilt(scipy.signal.butter(8, 3000, fs=SR, output="sos"), wave).astype(np.float32)


def _with_noise(wave, seed):
    return (wave + 1e-3 * np.random.default_rng(seed).standard_normal(wave.size)).astype(np.float32)


def test_a_visible_trace_is_found_and_an_invisible_one_is_not():
    sources = _sources()
    visible = visibility_check.pair_accuracy([(s, _low_pass(s)) for s in sources], folds=4)
    # Both clips of a pair get a fresh noise floor of the same level: nothing tells them apart.
    invisible = visibility_check.pair_accuracy([(_with_noise(s, 2 * i), _with_noise(s, 2 * i + 1)) for i, s in enumerate(sources)], folds=4)
    assert set(visible) == set(invisible) == set(visibility_check.FEATURE_SETS)
    assert min(visible.values()) > 0.9, visible
    assert max(invisible.values()) < 0.75, invisible


def test_too_few_pairs_is_one_clear_error():
    with pytest.raises(ValueError, match="2 pairs, need at least 5"):
        visibility_check.pair_accuracy([(np.zeros(SR, np.float32), np.zeros(SR, np.float32))] * 2)


def _flac(wave):
    buffer = io.BytesIO()
    sf.write(buffer, wave, SR, format="FLAC")
    return buffer.getvalue()


def _write_dataset(folder, with_pair_columns=True):
    import datasets

    rows = {"utt_id": [], "label": [], "reconstruction": [], "is_reconstructed": [], "source_id": [], "audio": []}

    def add(utt, label, recon, source, wave):
        for key, value in zip(rows, (utt, label, recon, recon != "none", source, {"bytes": _flac(wave), "path": None})):
            rows[key].append(value)

    for i, wave in enumerate(_sources()):
        add(f"b{i}", 0, "none", f"b{i}", wave)
        add(f"b{i}__lowpass", 1, "lowpass", f"b{i}", _low_pass(wave))
    if not with_pair_columns:
        del rows["source_id"]
    (folder / "data").mkdir(parents=True)
    datasets.Dataset.from_dict(rows).to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))


def test_cli_pairs_rows_by_source(tmp_path, capsys):
    _write_dataset(tmp_path)
    assert visibility_check.main([str(tmp_path), "--folds", "4"]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith("lowpass of bona fide"))
    assert line.split()[4] == str(N_PAIRS)
    assert all(float(cell.rstrip("%")) > 90 for cell in line.split()[5:]), line


def test_cli_refuses_a_dataset_without_pairs(tmp_path, capsys):
    _write_dataset(tmp_path, with_pair_columns=False)
    capsys.readouterr()
    assert visibility_check.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("visibility_check: error: ") and "missing columns: source_id" in err[-1]
    assert "Traceback" not in "\n".join(err)  # (datasets' progress bars may come first)


@pytest.mark.parametrize("folder, message", [("missing", "no such dataset folder"), (".", "no split 'test'; it has train")])
def test_cli_bad_path_or_split_is_one_line(tmp_path, capsys, folder, message):
    _write_dataset(tmp_path)
    capsys.readouterr()
    assert visibility_check.main([str(tmp_path / folder), "--split", "test"]) == 2
    err = capsys.readouterr().err.strip().splitlines()  # datasets' progress bars may come first
    assert err[-1].startswith("visibility_check: error: ") and message in err[-1] and "Traceback" not in "\n".join(err), err


def test_cli_refuses_fewer_than_two_folds(tmp_path, capsys):
    with pytest.raises(SystemExit):
        visibility_check.main([str(tmp_path), "--folds", "1"])
    assert "--folds must be at least 2" in capsys.readouterr().err


def test_cli_takes_the_stft_geometry(tmp_path, capsys):
    _write_dataset(tmp_path)
    assert visibility_check.main([str(tmp_path), "--folds", "4", "--n-fft", "1024", "--hop", "256"]) == 0
    out = capsys.readouterr().out
    assert "1024-point STFT, hop 256" in out.splitlines()[0]
    line = next(row for row in out.splitlines() if row.startswith("lowpass of bona fide"))
    assert all(float(cell.rstrip("%")) > 90 for cell in line.split()[5:]), line
    with pytest.raises(SystemExit):
        visibility_check.main([str(tmp_path), "--hop", "0"])
    assert "--hop must be at least 1" in capsys.readouterr().err
