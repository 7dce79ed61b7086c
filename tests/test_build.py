"""The dataset build CLI on a tiny generated corpus: schema, pairs, splits, bad files, errors,
resume after a kill, and multi-process builds that must equal the one-process build."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import yaml

from conftest import ROOT, speech_like
from datasets_scripts import build
from datasets_scripts.build_config import ConfigError, load_config, parse_config
from datasets_scripts.build_plan import fingerprint, make_plan
from datasets_scripts.schema import FEATURES, ClipRecord
from datasets_scripts.splits import SplitSpec, assign_splits

SR = 16_000
TINY = ROOT / "configs" / "data" / "tiny.yaml"
SPEAKERS = [f"s{i}" for i in range(1, 7)]
BAD_ROWS = [("bad.wav", "bonafide", "s1", "-"), ("empty.wav", "bonafide", "s2", "-"), ("gone.wav", "spoof", "s3", "A1")]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Six speakers × (two bona fide clips, A1, A2), 0.5 s each; ``metadata.csv`` and ``with_bad.csv``."""
    root = tmp_path_factory.mktemp("corpus")
    rows = []
    for n, speaker in enumerate(SPEAKERS):
        for kind, label, attack in (("b0", "bonafide", "-"), ("b1", "bonafide", "-"), ("A1", "spoof", "A1"), ("A2", "spoof", "A2")):
            name = f"{speaker}_{kind}.wav"
            sf.write(root / name, speech_like(0.5, seed=10 * n + len(rows)), SR)
            rows.append((name, label, speaker, attack))
    (root / "bad.wav").write_bytes(b"RIFF\x00\x00 this is not a wave file" * 4)
    (root / "empty.wav").write_bytes(b"")
    for name, extra in (("metadata.csv", []), ("with_bad.csv", BAD_ROWS)):
        with open(root / name, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "label", "speaker", "attack"])
            writer.writerows(rows + extra)
    return root


def make_config(folder: Path, corpus_csv: Path, name: str = "tiny.yaml", **changes) -> Path:
    """configs/data/tiny.yaml with the corpus filled in and top-level / section keys changed."""
    config = yaml.safe_load(TINY.read_text())
    config["sources"][0]["root"] = str(corpus_csv)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    path = folder / name
    path.write_text(yaml.safe_dump(config))
    return path


def run_main(*args) -> int:
    return build.main([str(a) for a in args])


def split_rows(out: Path) -> dict[str, dict[str, dict]]:
    """split → utt_id → row (audio as its encoded bytes), straight from the Parquet files."""
    result = {}
    for split in ("train", "validation", "test"):
        files = sorted((out / "data").glob(f"{split}-*.parquet"))
        rows = pa.concat_tables([pq.read_table(f) for f in files]).to_pylist() if files else []
        result[split] = {r["utt_id"]: dict(r, audio=r["audio"]["bytes"]) for r in rows}
    return result


@pytest.fixture(scope="module")
def reference(tmp_path_factory, corpus) -> tuple[Path, Path]:
    """An uninterrupted one-process build of the clean corpus: (config, output folder)."""
    folder = tmp_path_factory.mktemp("reference")
    config = make_config(folder, corpus / "metadata.csv")
    assert run_main("--config", config, "--output-dir", folder / "out") == 0
    return config, folder / "out"


def test_loads_with_schema_and_decodes_16k(reference, tmp_path):
    import datasets

    _, out = reference
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert set(ds) == {"train", "validation", "test"}
    for split in ds.values():
        assert split.features == FEATURES
        audio = split[0]["audio"]
        samples = audio.get_all_samples()
        assert samples.sample_rate == SR and samples.data.shape == (1, int(0.5 * SR))
    # s1..s4 train, s5 validation, s6 test; A2 only in test; world (test-only) reconstructs every class there.
    assert [ds[s].num_rows for s in ("train", "validation", "test")] == [4 * 5, 5, 10]
    assert sorted((out / "data").iterdir())[0].name == "test-00000-of-00001.parquet"


def test_pairs_and_columns(reference):
    _, out = reference
    for split, rows in split_rows(out).items():
        originals = {u for u, r in rows.items() if not r["is_reconstructed"]}
        for utt_id, row in rows.items():
            if not row["is_reconstructed"]:
                assert row["source_id"] == utt_id and row["reconstruction"] == "none"
                continue
            source = rows[row["source_id"]]
            assert row["source_id"] in originals, f"{utt_id}: source not in {split}"
            assert utt_id == f"{row['source_id']}__{row['reconstruction']}"
            assert row["label"] == 1 and row["speaker"] == source["speaker"]
            expected = row["reconstruction"] if source["label"] == 0 else f"{source['attack']}+{row['reconstruction']}"
            assert row["attack"] == expected
            assert abs(row["duration"] - source["duration"]) < 1e-6


def test_speaker_disjoint_and_held_out_only_in_test(reference):
    _, out = reference
    rows = split_rows(out)
    speakers = {s: {r["speaker"] for r in rows[s].values()} for s in rows}
    assert speakers == {"train": {"s1", "s2", "s3", "s4"}, "validation": {"s5"}, "test": {"s6"}}
    for split in ("train", "validation"):
        for row in rows[split].values():
            assert "A2" not in row["attack"] and row["reconstruction"] != "world"
    test_attacks = {r["attack"] for r in rows["test"].values()}
    assert {"A2", "world", "A1+world", "A2+world"} <= test_attacks
    card = (out / "README.md").read_text()
    assert "held_out_attack_outside_test" in card and "Skipped: **5**" in card


def test_card_front_matter_and_counts(reference):
    from huggingface_hub import DatasetCard

    config, out = reference
    card = DatasetCard.load(out / "README.md")
    data = card.data.to_dict()
    assert [c["path"] for c in data["configs"][0]["data_files"]] == ["data/train-*", "data/validation-*", "data/test-*"]
    assert {s["name"]: s["num_examples"] for s in data["dataset_info"]["splits"]} == {"train": 20, "validation": 5, "test": 10}
    for needle in ("0 = bonafide, 1 = spoof", "| `world` | 0 | 0 | 4 | 4 |", "hours", "--config", str(config),
                   "test_only_paradigms", "your own data"):
        assert needle in card.text


def test_card_licence_follows_the_corpus_the_rows_name(tmp_path, corpus):
    """A folder source whose rows say `corpus: demo` (as the demo's build does) gets the demo corpus's licences."""
    sources = [{"corpus": "folder", "root": str(corpus / "metadata.csv"), "options": {"corpus": "demo"}}]
    config = make_config(tmp_path, corpus / "metadata.csv", sources=sources)
    assert run_main("--config", config, "--output-dir", tmp_path / "out") == 0
    card = (tmp_path / "out" / "README.md").read_text()
    assert "| `demo` | `all` | 24 | 24 | bona fide speech: the Czech and Dutch voice tracks of Fish Fillets NG" in card
    assert "your own data" not in card


def test_every_corpus_reader_has_a_licence_line():
    from datasets_scripts.card import LICENCES
    from datasets_scripts.corpora import CORPORA

    assert set(CORPORA) == set(LICENCES)


def test_bad_files_are_logged_and_counted(tmp_path, corpus):
    import datasets

    config = make_config(tmp_path, corpus / "with_bad.csv", paradigms=[{"name": "griffinlim", "options": {"n_iter": 4}}],
                         splits={"validation": 0, "test_only_paradigms": []}, postprocess={"finalize": True})
    out = tmp_path / "out"
    assert run_main("--config", config, "--output-dir", out) == 0
    log = (out / "build.log").read_text()
    assert "[unreadable] bad" in log and "[empty_file] empty" in log and "empty file (0 bytes)" in log
    assert "[missing_file] gone" in log and "no such file" in log
    card = (out / "README.md").read_text()
    assert "Skipped: **8**" in card  # 3 bad files + A2 of the five speakers outside test
    assert "| `missing_file` | 1 |" in card and "| `unreadable` | 1 |" in card and "| `empty_file` | 1 |" in card
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert set(ds) == {"train", "test"}  # the empty validation split is left out, not broken
    assert ds["train"].num_rows == 5 * 5 and "bad" not in ds["train"]["utt_id"]


@pytest.mark.parametrize("vary", [False, True, ["room", "noise"]])
def test_processing_before_reconstruction_keeps_each_pair_the_same_length(tmp_path, vary):
    """Sources are trimmed (and put in the room) before they are reconstructed, so a reconstruction
    is exactly as long as its processed original; a silent source is skipped with its reconstructions.
    With ``vary_channel`` each clip gets a room, band edge and noise floor of its own, and the card says so."""
    import numpy as np

    silence = np.zeros(SR // 4, np.float32)
    rows = [["path", "label", "speaker", "attack"]]
    for n, speaker in enumerate(SPEAKERS[:3]):
        for kind, label, attack in (("b0", "bonafide", "-"), ("A1", "spoof", "A1")):
            sf.write(tmp_path / f"{speaker}_{kind}.wav", np.concatenate([silence, speech_like(0.5, seed=n), silence]), SR)
            rows.append([f"{speaker}_{kind}.wav", label, speaker, attack])
    sf.write(tmp_path / "silent.wav", np.zeros(SR // 2, np.float32), SR)
    rows.append(["silent.wav", "bonafide", "s1", "-"])
    with open(tmp_path / "metadata.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    config = make_config(tmp_path, tmp_path / "metadata.csv", paradigms=[{"name": "griffinlim", "options": {"n_iter": 4}}],
                         splits={"validation": 0, "test": 0, "test_only_paradigms": []},
                         postprocess={"finalize": True, "before_reconstruction": True, "vary_channel": vary})
    out = tmp_path / "out"
    assert run_main("--config", config, "--output-dir", out) == 0
    card = (out / "README.md").read_text()
    assert ("channel drawn per clip" in card) == bool(vary) and ("(room, noise:" in card) == (vary == ["room", "noise"])
    rows = {utt: row for split in split_rows(out).values() for utt, row in split.items()}
    pairs = [(row, rows[row["source_id"]]) for row in rows.values() if row["is_reconstructed"]]
    assert len(pairs) == 3 and all(r["duration"] == s["duration"] for r, s in pairs)
    assert all(r["duration"] < 0.9 for r in rows.values())  # 0.5 s of digital silence trimmed to 2 x 0.1 s
    log = (out / "build.log").read_text()
    assert "[postprocess_failed] silent (" in log and "[postprocess_failed] silent__griffinlim (" in log


@pytest.mark.parametrize(
    "change, message",
    [
        ({"paradigms": [{"name": "wrld"}]}, "`paradigms[0].name`: unknown reconstruction paradigm 'wrld'"),
        ({"sources": [{"corpus": "folder", "root": "/nonexistent/corpus"}]}, "/nonexistent/corpus: no such folder"),
        ({"shardsize": 3}, "`shardsize`: unknown key"),
        ({"shard_size": "two"}, "`shard_size`: expected a positive integer"),
        ({"splits": {"test_only_paradigms": ["hifigan"]}}, "`splits.test_only_paradigms`"),
        ({"paradigms": [{"name": "world", "apply_to": ["real"]}]}, "`paradigms[0].apply_to`"),
        ({"postprocess": {"finalize": False, "before_reconstruction": True}}, "needs `finalize: true`"),
        ({"postprocess": {"finalize": False, "vary_channel": True}}, "`postprocess.vary_channel`: needs `finalize: true`"),
        ({"postprocess": {"finalize": True, "vary_channel": "yes"}}, "`postprocess.vary_channel`: expected"),
        ({"postprocess": {"finalize": True, "vary_channel": ["room", "echo"]}}, "a list of room, band, noise"),
    ],
)
def test_config_errors_before_any_work(tmp_path, corpus, capsys, change, message):
    config = make_config(tmp_path, corpus / "metadata.csv", **change)
    out = tmp_path / "out"
    assert run_main("--config", config, "--output-dir", out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("racl-build: error:") and message in err[0]
    assert not out.exists()


def test_changed_config_is_refused_then_overwritten(tmp_path, corpus, capsys):
    out = tmp_path / "out"
    first = make_config(tmp_path, corpus / "metadata.csv", paradigms=[], splits={"test_only_paradigms": []}, max_seconds=0.25)
    assert run_main("--config", first, "--output-dir", out) == 0
    second = make_config(tmp_path, corpus / "metadata.csv", "second.yaml", paradigms=[], splits={"test_only_paradigms": []},
                         max_seconds=0.3)
    assert run_main("--config", second, "--output-dir", out) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert run_main("--config", second, "--output-dir", out, "--overwrite") == 0
    assert {round(r["duration"], 3) for r in split_rows(out)["train"].values()} == {0.3}


def test_push_to_hub_uploads_data_and_card_only(reference, monkeypatch):
    import huggingface_hub

    calls = []

    class FakeApi:
        def __init__(self, **kwargs):
            pass

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs["repo_id"], kwargs))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    _, out = reference
    build.push(out, "someone/racl-tiny", private=True)
    (_, repo, create), (_, _, upload) = calls
    assert repo == "someone/racl-tiny" and create["repo_type"] == "dataset" and create["private"]
    assert upload["folder_path"] == str(out) and upload["repo_type"] == "dataset"
    assert upload["allow_patterns"] == ["data/*.parquet", "README.md"]  # not .work/ or the local log


def test_killed_build_resumes_to_the_same_dataset(tmp_path, reference):
    config, ref_out = reference
    out = tmp_path / "out"
    args = ["--config", str(config), "--output-dir", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "datasets_scripts.build", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = out / ".work"
    deadline = time.time() + 240
    while not list(work.glob("shard-*.parquet")):
        assert proc.poll() is None, "the build ended before its first shard"
        assert time.time() < deadline
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    total = json.loads((work / "fingerprint.json").read_text())["num_shards"]
    done = {p: p.stat().st_mtime_ns for p in work.glob("shard-*.parquet")}
    assert 1 <= len(done) < total and not (out / "data").exists()

    assert run_main(*args) == 0
    assert all(p.stat().st_mtime_ns == t for p, t in done.items()), "finished shards were redone"
    assert not list(work.glob(".shard-*"))
    assert split_rows(out) == split_rows(ref_out)


def test_num_proc_2_equals_one_process(tmp_path, reference):
    config, ref_out = reference
    out = tmp_path / "out"
    assert run_main("--config", config, "--output-dir", out, "--num-proc", 2) == 0
    assert split_rows(out) == split_rows(ref_out)
    for ref_file in (ref_out / "data").iterdir():  # same files, byte for byte
        assert (out / "data" / ref_file.name).read_bytes() == ref_file.read_bytes()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_accelerate_two_processes_equal_one_process(tmp_path, reference):
    config, ref_out = reference
    out = tmp_path / "out"
    accelerate = Path(sys.executable).parent / "accelerate"
    # --multi_gpu is accelerate's torchrun launcher; without a GPU the ranks run on the CPU (gloo).
    # (`--cpu --num_processes 2` starts a single process unless MPI is set up.)
    cmd = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
           "-m", "datasets_scripts.build", "--config", str(config), "--output-dir", str(out)]
    result = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert split_rows(out) == split_rows(ref_out)
    assert "accelerate launch --multi_gpu --num_processes 2" in (out / "README.md").read_text()
    log = (out / "build.log").read_text()
    assert log.count("build started") == 1 and "2 processes" in log


# -- splits, without audio ----------------------------------------------------------------------


def _records(speakers, per_speaker=2, extra=None):
    return [ClipRecord(f"/x/{s}_{i}.wav", f"{s}_{i}", "bonafide", s, "folder", extra=dict(extra or {}))
            for s in speakers for i in range(per_speaker)]


def test_fraction_split_is_seeded_and_speaker_disjoint():
    records = _records([f"spk{i:02d}" for i in range(20)])
    spec = SplitSpec(validation=0.1, test=0.2, seed=3)
    plan = assign_splits(records, spec)
    assert plan.speaker_split == assign_splits(records, spec).speaker_split
    counts = {s: sum(1 for v in plan.speaker_split.values() if v == s) for s in ("train", "validation", "test")}
    assert counts == {"train": 14, "validation": 2, "test": 4}
    assert assign_splits(records, SplitSpec(validation=0.1, test=0.2, seed=4)).speaker_split != plan.speaker_split


def test_corpus_split_map_drops_speaker_conflicts():
    records = _records(["a", "b"], extra={"split": "train"}) + _records(["c"], extra={"split": "eval"})
    records.append(ClipRecord("/x/a_eval.wav", "a_eval", "spoof", "a", "folder", "A9", extra={"split": "eval"}))
    spec = SplitSpec(validation=0.0, test=0.0, source_split_map={"train": "train", "eval": "test"}, test_only_attacks=["A9"])
    plan = assign_splits(records, spec)
    assert plan.speaker_split == {"a": "train", "b": "train", "c": "test"}
    assert [(d.utt_id, d.kind) for d in plan.dropped] == [("a_eval", "speaker_split_conflict")]


def test_limit_spreads_and_changes_the_fingerprint(tmp_path, corpus):
    config, _ = load_config(make_config(tmp_path, corpus / "metadata.csv"))
    full, limited = make_plan(config), make_plan(config, limit=8)
    assert len(limited.items) < len(full.items) and len({i.speaker for i in limited.items}) >= 4
    assert fingerprint(config, full, None)["fingerprint"] != fingerprint(config, limited, 8)["fingerprint"]
    assert [i.utt_id for i in full.items] == sorted(i.utt_id for i in full.items)


def test_extends_starts_from_the_base_config_and_the_text_is_the_merged_config(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(TINY.read_text())
    child = tmp_path / "sub" / "child.yaml"
    child.parent.mkdir()
    child.write_text("extends: ../base.yaml\nname: child\nsplits: {seed: 7}\nparadigms:\n  - name: world\n")
    config, text = load_config(child)
    parent, _ = load_config(base)
    assert config.name == "child" and [p.name for p in config.paradigms] == ["world"]  # lists replace
    assert config.splits.seed == 7 and config.splits.validation == parent.splits.validation  # mappings merge
    assert (config.sources, config.shard_size, config.seed) == (parent.sources, parent.shard_size, parent.seed)
    merged = yaml.safe_load(text)  # the card shows what was built, not a pointer to another file
    assert "extends" not in merged and merged["splits"]["seed"] == 7
    assert parse_config(merged, "merged") == config


@pytest.mark.parametrize("body, problem", [
    ("extends: missing.yaml\n", "`extends`: missing.yaml: no such config file"),
    ("extends: self.yaml\n", "a cycle"),
    ("extends: other.yaml\n", "a cycle"),
    ("extends: [a.yaml]\n", "`extends`: expected a file name"),
])
def test_bad_extends_is_one_clear_error(tmp_path, body, problem):
    path = tmp_path / "self.yaml"
    path.write_text(body)
    (tmp_path / "other.yaml").write_text("extends: self.yaml\n")
    with pytest.raises(ConfigError, match=problem):
        load_config(path)


def test_shipped_build_configs_parse_and_the_hifigan_demo_build_differs_from_the_demo_by_that_paradigm_only():
    configs = {path.stem: load_config(path)[0] for path in sorted((ROOT / "configs" / "data").glob("*.yaml"))}
    assert {"tiny", "demo", "demo_hifigan", "asvspoof2019_la"} <= set(configs)
    demo, with_hifigan = configs["demo"], configs["demo_hifigan"]
    assert [p for p in with_hifigan.paradigms if p.name != "hifigan"] == demo.paradigms
    assert (with_hifigan.splits, with_hifigan.sources, with_hifigan.seed) == (demo.splits, demo.sources, demo.seed)
    assert (with_hifigan.finalize, with_hifigan.before_reconstruction) == (demo.finalize, demo.before_reconstruction)


def test_a_paradigm_option_names_a_path_through_an_environment_variable(tmp_path, monkeypatch):
    """configs/data/demo*.yaml name the denoiser as ${RACL_DEMO_DIFFUSION}: the build resolves it, as it does corpus roots."""
    from datasets_scripts.build_config import ParadigmSpec
    from datasets_scripts.build_shards import ShardWorker

    checkpoint = tmp_path / "denoiser"
    checkpoint.mkdir()  # not a checkpoint (no mel_stats.json): the error names the path the variable resolved to
    monkeypatch.setenv("RACL_TEST_DENOISER", str(checkpoint))
    spec = ParadigmSpec(name="diffusion", options={"variant": "offline", "checkpoint": "${RACL_TEST_DENOISER}"})
    worker = ShardWorker(parse_config(yaml.safe_load(TINY.read_text())), str(tmp_path / "work"))
    with pytest.raises(FileNotFoundError, match=f"{checkpoint} is not a mel-diffusion checkpoint"):
        worker.reconstructor(spec)
