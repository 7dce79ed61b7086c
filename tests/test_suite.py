"""``racl-eval --suite paper``: the five test sets in one run, on tiny trees written in each corpus's published layout
(the layouts of tests/test_corpora.py), with a tiny model; a missing root is one line and the others still run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import SR, speech_like

from racl.evaluation.cli import main
from racl.evaluation.suite import PAPER, suite_roots

SECONDS = 0.6


def wav(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), speech_like(SECONDS, seed), SR)


def text(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")


def asvspoof2019(root: Path) -> Path:
    la = root / "LA"
    rows = [("LA_0039", "LA_E_1000001", "-", "bonafide"), ("LA_0039", "LA_E_1000002", "A11", "spoof"),
            ("LA_0040", "LA_E_1000003", "-", "bonafide"), ("LA_0040", "LA_E_1000004", "A17", "spoof")]
    text(la / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.eval.trl.txt",
         "".join(f"{spk} {utt} - {system} {key}\n" for spk, utt, system, key in rows))
    for i, (_, utt, _, _) in enumerate(rows):
        wav(la / "ASVspoof2019_LA_eval" / "flac" / f"{utt}.flac", i)
    rng = np.random.default_rng(0)  # the organisers' three-column ASV scores: SOURCE KEY SCORE
    asv = [("bonafide", "target", rng.normal(3)) for _ in range(10)] + [("bonafide", "nontarget", rng.normal(-3)) for _ in range(10)]
    asv += [("A11", "spoof", rng.normal(1.5)) for _ in range(10)]
    text(la / "ASVspoof2019_LA_asv_scores" / "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt", "".join(f"{s} {k} {v:.4f}\n" for s, k, v in asv))
    return la


def in_the_wild(root: Path) -> Path:
    release = root / "release_in_the_wild"
    text(release / "meta.csv", "file,speaker,label\n0.wav,Alec Guinness,spoof\n1.wav,Alec Guinness,bona-fide\n"
         "2.wav,Barack Obama,spoof\n3.wav,Barack Obama,bona-fide\n")
    for i in range(4):
        wav(release / f"{i}.wav", 10 + i)
    return release


def wavefake(root: Path) -> Path:
    for i, stem in enumerate(("LJ001-0001", "LJ001-0002")):
        wav(root / "real_audio" / "LJSpeech-1.1" / "wavs" / f"{stem}.wav", 20 + i)
        wav(root / "generated_audio" / "ljspeech_melgan" / f"{stem}_gen.wav", 22 + i)
    return root


def codecfake(root: Path) -> Path:
    rows = ["genuine/p227_001.wav,genuine,p227,genuine", "encodec_24khz/p227_001.wav,spoofing,p227,encodec_24khz",
            "genuine/p228_002.wav,genuine,p228,genuine", "encodec_24khz/p228_002.wav,spoofing,p228,encodec_24khz",
            "genuine/p225_003.wav,genuine,p225,genuine"]  # p225 is a training speaker: not in eval
    text(root / "metadata.csv", "file,label,speaker_id,codec_name\n" + "\n".join(rows) + "\n")
    for i, row in enumerate(rows):
        wav(root / row.split(",")[0], 30 + i)
    return root


def diffssd(root: Path) -> Path:
    rows = ["ljspeech/LJ001-0001.wav,ljspeech,real,ljspeech,test,0", "ljspeech/LJ001-0002.wav,ljspeech,real,ljspeech,test,0",
            "generated_speech/grad_tts/sentence_7.wav,gradtts,open-source,diffusion,test,1",
            "generated_speech/grad_tts/sentence_8.wav,gradtts,open-source,diffusion,test,1",
            "generated_speech/grad_tts/sentence_9.wav,gradtts,open-source,diffusion,train,1"]
    text(root / "train_val_test_splits.csv", "filename,method_name,category,source,set,target\n" + "\n".join(rows) + "\n")
    for i, stem in enumerate(("LJ001-0001", "LJ001-0002")):
        wav(root / "real_speech" / "LJSpeech-1.1" / "wavs" / f"{stem}.wav", 40 + i)
    for i in (7, 8, 9):
        wav(root / "generated_speech" / "grad_tts" / f"sentence_{i}.wav", 40 + i)
    return root


@pytest.fixture(autouse=True)
def no_roots_in_the_environment(monkeypatch):
    for test_set in PAPER:
        monkeypatch.delenv(test_set.env, raising=False)


def run(tiny_model_dir, out, *extra):
    return main(["--model", str(tiny_model_dir), "--suite", "paper", "--out", str(out), "--device", "cpu", "--batch-size", "4", *extra])


def racl_eval_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("racl-eval:")]  # not the progress bars


def test_suite_scores_all_five_sets_into_one_table(tiny_model_dir, tmp_path, monkeypatch, capsys):
    roots = {"asvspoof2019_la": asvspoof2019(tmp_path / "19la"), "in_the_wild": in_the_wild(tmp_path / "itw"),
             "codecfake": codecfake(tmp_path / "codecfake"), "diffssd": diffssd(tmp_path / "diffssd")}
    text(tmp_path / "roots.yaml", "".join(f"{k}: {v}\n" for k, v in roots.items()))
    monkeypatch.setenv("WAVEFAKE_ROOT", str(wavefake(tmp_path / "wavefake")))  # a root from the environment
    out = tmp_path / "out"
    code = run(tiny_model_dir, out, "--roots", str(tmp_path / "roots.yaml"))
    captured = capsys.readouterr()
    assert code == 0 and racl_eval_lines(captured.err) == [], captured.err
    results = json.loads((out / "suite.json").read_text())
    assert [row["set"] for row in results["sets"]] == ["ASVspoof 2019 LA", "In-the-Wild", "WaveFake", "CodecFake", "DiffSSD"]
    sets = {row["corpus"]: row for row in results["sets"]}
    # CodecFake: its eval speakers only; DiffSSD: its test set only
    assert {k: row["n_clips"] for k, row in sets.items()} == {"asvspoof2019_la": 4, "in_the_wild": 4, "wavefake": 4, "codecfake": 4, "diffssd": 4}
    assert sets["asvspoof2019_la"]["min_tdcf"] is not None and sets["in_the_wild"]["min_tdcf"] is None  # t-DCF: 19LA's ASV scores
    eers = [row["eer_percent"] for row in results["sets"]]
    assert all(0 <= e <= 100 for e in eers) and results["mean_eer_percent"] == pytest.approx(np.mean(eers))
    for corpus in sets:  # one full report per set
        assert (out / corpus / "report.md").is_file() and (out / corpus / "scores.txt").is_file()
    table = (out / "suite.md").read_text()
    assert "| **mean** (5 of 5 sets) |" in table and "8.247" in table and table in captured.out


def test_a_missing_root_is_one_line_and_the_others_still_run(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ITW_ROOT", str(in_the_wild(tmp_path / "itw")))
    monkeypatch.setenv("DIFFSSD_ROOT", str(tmp_path / "not-there"))
    out = tmp_path / "out"
    assert run(tiny_model_dir, out) == 0
    lines = racl_eval_lines(capsys.readouterr().err)
    assert len(lines) == 4 and "racl-eval: ASVspoof 2019 LA skipped: no root (set ASVSPOOF2019_ROOT, or `asvspoof2019_la:` in --roots)" in lines
    assert any(line.startswith("racl-eval: DiffSSD skipped: ") and "not-there" in line for line in lines)
    results = json.loads((out / "suite.json").read_text())
    assert results["n_sets_scored"] == 1 and results["mean_eer_percent"] == results["sets"][1]["eer_percent"]
    assert "| **mean** (1 of 5 sets) |" in (out / "suite.md").read_text() and "| WaveFake | | skipped: no root" in (out / "suite.md").read_text()


def test_env_roots_and_a_wrong_root(tmp_path, monkeypatch):
    monkeypatch.setenv("WAVEFAKE_ROOT", str(wavefake(tmp_path / "wf")))
    monkeypatch.setenv("ITW_ROOT", str(tmp_path / "nowhere"))
    roots = suite_roots("paper")
    assert roots["wavefake"] == str(tmp_path / "wf") and roots["asvspoof2019_la"] is None
    from racl.evaluation.suite import check_set

    problems = {s.corpus: check_set(s, roots[s.corpus]) for s in PAPER}
    assert problems["wavefake"] is None and "no such folder" in problems["in_the_wild"] and "ASVSPOOF2019_ROOT" in problems["asvspoof2019_la"]


@pytest.mark.parametrize("roots_yaml, expected", [
    (None, "no test set of suite 'paper' is present: ASVspoof 2019 LA (no root"),
    ("itw: /data\n", "`itw`: unknown key"),
])
def test_suite_bad_input_is_one_line_exit_2(roots_yaml, expected, tiny_model_dir, tmp_path, capsys):
    args = ["--model", str(tiny_model_dir), "--suite", "paper", "--out", str(tmp_path / "out")]
    if roots_yaml:
        text(tmp_path / "roots.yaml", roots_yaml)
        args += ["--roots", str(tmp_path / "roots.yaml")]
    assert main(args) == 2
    err = racl_eval_lines(capsys.readouterr().err)
    assert len(err) == 1 and expected in err[0], err
