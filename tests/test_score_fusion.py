"""benchmarks/score_fusion.py: two detectors' calibrated scores summed, summarised as racl-eval does."""

import json

import datasets
import pytest

from benchmarks import score_fusion

# Bona fide b0-b3; TTS spoofs t0-t1 (attack "tts-x", unseen in training); reconstructions r0-r1 of real speech.
ROWS = [("b0", 0, "-", "none"), ("b1", 0, "-", "none"), ("b2", 0, "-", "none"), ("b3", 0, "-", "none"),
        ("t0", 1, "tts-x", "none"), ("t1", 1, "tts-x", "none"), ("r0", 1, "world", "world"), ("r1", 1, "world", "world")]
SOURCES = {"r0": "b0", "r1": "b1"}


def split(rows):
    return datasets.Dataset.from_dict({"utt_id": [r[0] for r in rows], "label": [r[1] for r in rows], "attack": [r[2] for r in rows],
                                       "reconstruction": [r[3] for r in rows], "audio": ["-"] * len(rows),
                                       "source_id": [SOURCES.get(r[0], r[0]) for r in rows]})


def write_run(tmp_path, name, scores, scale=1.0, bias=0.0):
    """A racl-eval folder (scores.txt) and a model folder (config.json with the calibration) for these scores."""
    (tmp_path / name / "eval").mkdir(parents=True)
    (tmp_path / name / "eval" / "scores.txt").write_text("".join(f"{u} {s}\n" for u, s in scores.items()))
    (tmp_path / name / "model").mkdir()
    (tmp_path / name / "model" / "config.json").write_text(json.dumps({"calibration_scale": scale, "calibration_bias": bias}))
    return [str(tmp_path / name / "eval"), str(tmp_path / name / "model")]


def test_each_model_catches_one_kind_and_the_sum_catches_both(tmp_path, capsys):
    data = tmp_path / "data"
    datasets.DatasetDict({"train": split([ROWS[0], ("w", 1, "world", "world")]), "test": split(ROWS)}).save_to_disk(str(data))
    real = {"b0": 1.0, "b1": 1.2, "b2": 0.9, "b3": 1.1}
    # A ranks the TTS clips lowest and the reconstructions among the real clips; B the other way round
    a = write_run(tmp_path, "a", {**real, "t0": -5, "t1": -6, "r0": 1.05, "r1": 0.95})
    # B's scores are ten times larger: its calibration brings them back to A's scale
    b = write_run(tmp_path, "b", {**{u: 10 * s for u, s in real.items()}, "t0": 10.5, "t1": 9.5, "r0": -50, "r1": -60}, scale=0.1)
    assert score_fusion.main(["--data", str(data), "--pair", *a, *b]) == 0
    table = {line.split(" | ")[0].strip("| "): line.split(" | ")[1:] for line in capsys.readouterr().out.splitlines() if line.startswith("| ")}
    assert table["tts-x"][0] == "0.0" and float(table["tts-x"][1]) >= 25  # A catches TTS, B does not
    assert float(table["world of bona fide"][0]) >= 25 and table["world of bona fide"][1] == "0.0"
    assert table["pooled"][2].rstrip(" |") == "0.0"  # the fused score separates both kinds
    assert table["unseen"][2].rstrip(" |") == "0.0"  # tts-x was not in training, so it counts as unseen


def test_a_clip_without_a_score_is_one_clear_error(tmp_path):
    data = tmp_path / "data"
    datasets.DatasetDict({"train": split(ROWS[:1] + ROWS[6:7]), "test": split(ROWS)}).save_to_disk(str(data))
    a = write_run(tmp_path, "a", {r[0]: 0.0 for r in ROWS})
    b = write_run(tmp_path, "b", {r[0]: 0.0 for r in ROWS[:-1]})
    with pytest.raises(SystemExit, match="1 clips of the split have no score"):
        score_fusion.main(["--data", str(data), "--pair", *a, *b])


def test_a_model_without_calibration_or_scores_is_one_clear_error(tmp_path):
    data = tmp_path / "data"
    datasets.DatasetDict({"train": split(ROWS[:1] + ROWS[6:7]), "test": split(ROWS)}).save_to_disk(str(data))
    a = write_run(tmp_path, "a", {r[0]: 0.0 for r in ROWS})
    b = write_run(tmp_path, "b", {r[0]: 0.0 for r in ROWS})
    (tmp_path / "b" / "model" / "config.json").write_text("{}")
    with pytest.raises(SystemExit, match="has no calibration"):
        score_fusion.main(["--data", str(data), "--pair", *a, *b])
    with pytest.raises(SystemExit, match="no .*scores.txt"):
        score_fusion.main(["--data", str(data), "--pair", *a, str(tmp_path / "nowhere"), a[1]])


def test_the_min_rule_lets_either_models_alarm_decide(tmp_path, capsys):
    data = tmp_path / "data"
    datasets.DatasetDict({"train": split([ROWS[0], ("w", 1, "world", "world")]), "test": split(ROWS)}).save_to_disk(str(data))
    real = {"b0": 1.0, "b1": 1.2, "b2": 0.9, "b3": 1.1}
    # each model is sure of its own kind and calls the other kind more bona fide than real speech, so a sum cancels
    a = write_run(tmp_path, "a", {**real, "t0": -5, "t1": -6, "r0": 9, "r1": 10})
    b = write_run(tmp_path, "b", {**real, "t0": 9, "t1": 10, "r0": -5, "r1": -6})
    assert score_fusion.main(["--data", str(data), "--rule", "sum", "--pair", *a, *b]) == 0
    assert score_fusion.main(["--data", str(data), "--rule", "min", "--pair", *a, *b]) == 0
    tables = capsys.readouterr().out.split("EER %")[1:]
    pooled = [next(line for line in t.splitlines() if line.startswith("| pooled")).split(" | ")[3].rstrip(" |") for t in tables]
    assert float(pooled[0]) > 0 and pooled[1] == "0.0"
    with pytest.raises(SystemExit):
        score_fusion.main(["--data", str(data), "--rule", "max", "--pair", *a, *b])
