"""Results streamed to one file as they are made; a rerun after a kill skips what is done, loses and repeats nothing."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT, speech_like

from racl.folder_scoring import ResultsFile
from racl.scoring import COLUMNS, main as racl_score, result_row


def make_folder(folder, count: int, seconds: float = 1.0):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        sf.write(str(folder / f"clip{i:03d}.wav"), speech_like(seconds, i), 16000)
    (folder / "broken.wav").write_bytes(b"not audio at all" * 10)
    return sorted(str(p) for p in folder.glob("*.wav"))


def jsonl_paths(path) -> list[str]:
    return [json.loads(line)["path"] for line in path.read_text().splitlines()]


def test_out_appends_and_a_rerun_skips_what_is_there(tiny_model_dir, tmp_path, capsys):
    files = make_folder(tmp_path / "audio", 3)
    out = tmp_path / "scores.jsonl"
    args = ["--model", str(tiny_model_dir), "--out", str(out), str(tmp_path / "audio")]
    assert racl_score(args) == 1  # the broken file is a row with its error
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["path"] for r in rows) == files and sum(bool(r["error"]) for r in rows) == 1
    assert all(r["windows"] for r in rows if not r["error"])  # the timeline is in the JSONL
    sf.write(str(tmp_path / "audio" / "later.wav"), speech_like(1.0, 9), 16000)
    assert racl_score(args) == 0  # only the new file is scored
    assert sorted(jsonl_paths(out)) == sorted([*files, str(tmp_path / "audio" / "later.wav")])
    assert "1 scored" in capsys.readouterr().err


def test_csv_results_have_one_header_and_resume(tiny_model_dir, tmp_path):
    files = make_folder(tmp_path / "audio", 2)
    out = tmp_path / "scores.csv"
    for _ in range(2):
        racl_score(["--model", str(tiny_model_dir), "--out", str(out), str(tmp_path / "audio")])
    lines = out.read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS) and sorted(line.split(",")[0] for line in lines[1:]) == files


def test_an_unfinished_last_line_is_cut_before_appending(tmp_path):
    out = tmp_path / "scores.jsonl"
    out.write_text('{"path": "a.wav", "score": 1.0}\n{"path": "b.wav", "sco')  # a kill in the middle of a line
    results = ResultsFile.open(out, COLUMNS, result_row)
    assert results.done == {"a.wav"} and out.read_text() == '{"path": "a.wav", "score": 1.0}\n'
    with pytest.raises(ValueError, match=".jsonl or .csv"):
        ResultsFile.open(tmp_path / "scores.txt", COLUMNS, result_row)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(model, out, folder):
    # --multi_gpu is accelerate's torchrun launcher; without a GPU its ranks run on the CPU (gloo), as in test_build
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
               "-m", "racl.evaluation.folder_scoring", "--model", str(model), "--out", str(out), "--files-per-batch", "1", str(folder)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def kill_tree(run: subprocess.Popen) -> None:
    """SIGKILL the launcher and its workers at once (torchrun's workers are not in the launcher's process group)."""
    import psutil

    processes = [psutil.Process(run.pid), *psutil.Process(run.pid).children(recursive=True)]
    for p in processes:
        p.send_signal(signal.SIGKILL)
    run.wait()
    psutil.wait_procs(processes, timeout=30)


@pytest.mark.slow  # two launches of two processes each: about a minute on two loaded cores
def test_two_processes_killed_mid_run_then_resumed(tiny_model_dir, tmp_path):
    files = make_folder(tmp_path / "audio", 60, seconds=2.0)
    out = tmp_path / "scores.jsonl"
    run = launch(tiny_model_dir, out, tmp_path / "audio")
    deadline = time.monotonic() + 600
    while run.poll() is None and time.monotonic() < deadline and (not out.exists() or len(out.read_bytes().splitlines()) < 6):
        time.sleep(0.02)
    assert run.poll() is None, f"the run ended before it could be killed:\n{run.stdout.read()[-3000:]}"
    kill_tree(run)
    partial = jsonl_paths(out) if out.read_text().endswith("\n") else jsonl_paths(out)[:-1]
    assert 6 <= len(partial) < len(files) and len(set(partial)) == len(partial)

    rerun = launch(tiny_model_dir, out, tmp_path / "audio")
    log, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == (0 if any("broken" in p for p in partial) else 1), log[-3000:]  # 1: the broken file's error
    assert f"{len(files) - len(partial)} of {len(files)} files to score on 2 process(es)" in log
    rows = jsonl_paths(out)
    assert sorted(rows) == files, "a file was lost or scored twice"
    assert {p for p in rows[: len(partial)]} == set(partial)  # what the killed run wrote is kept as it was
    scores = {json.loads(line)["path"]: json.loads(line)["score"] for line in out.read_text().splitlines()}
    assert all(np.isfinite(scores[p]) for p in files if "broken" not in p)


def test_a_results_file_of_another_format_is_one_clear_error(tiny_model_dir, tmp_path, capsys):
    assert racl_score(["--model", str(tiny_model_dir), "--out", str(tmp_path / "scores.txt"), str(tmp_path)]) == 2
    assert "cannot append to" in capsys.readouterr().err
