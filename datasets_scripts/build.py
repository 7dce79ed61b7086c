"""Build the hard-sample dataset: corpora → 16 kHz → reconstructions → sharded Parquet + card.

    python -m datasets_scripts.build --config configs/data/tiny.yaml [--output-dir DIR]
        [--num-proc N] [--limit N] [--overwrite] [--push-to-hub REPO]
    accelerate launch --multi_gpu --num_processes N -m datasets_scripts.build --config ...
        # N ranks, one GPU each where there are GPUs, CPU ranks (gloo) where there are none

Steps (configs/data/README.md documents every config key):

1. validate the config, the paradigm names and the corpus paths (nothing is written before);
2. read every source's protocol, assign speaker-disjoint splits (:mod:`datasets_scripts.splits`),
   sort the kept clips by ``utt_id`` and cut them into shards of ``shard_size`` clips;
3. per shard: decode, crop, reconstruct with every applicable paradigm, post-process, encode
   (FLAC / 16-bit WAV) and write ``.work/shard-XXXXX.parquet`` atomically. Finished shards are
   skipped on a rerun with the same config, so a killed build resumes where it stopped;
4. assemble ``data/{split}-XXXXX-of-YYYYY.parquet`` (deduplicated by ``utt_id``), write the
   dataset card ``README.md`` and ``build.log``; optionally upload the folder to the Hub.

A file that cannot be used (missing, empty, undecodable) is skipped, logged with its reason and
counted in the card; it never stops the build.

This module is the command (arguments, output folder, resume, push); the steps live in
:mod:`~datasets_scripts.build_config` (1), :mod:`~datasets_scripts.build_plan` (2),
:mod:`~datasets_scripts.build_shards` (3) and :mod:`~datasets_scripts.build_parquet` (4).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import shutil
import sys
import time
from datetime import timedelta
from pathlib import Path

from racl.config import ConfigError

from .build_config import BuildConfig, check_paradigm_requirements, load_config
from .build_parquet import DATA_DIR, assemble
from .build_plan import Plan, fingerprint, make_plan
from .build_shards import run_shards, shard_path
from .splits import SPLITS

LOG = logging.getLogger("racl.build")
WORK_DIR, LOG_FILE, FINGERPRINT = ".work", "build.log", "fingerprint.json"
BARRIER_TIMEOUT_H = 48


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="racl-build", description="Build the hard-sample audio deepfake dataset (sharded Parquet + card).")
    parser.add_argument("--config", required=True, help="YAML build config (see configs/data/README.md)")
    parser.add_argument("--output-dir", help="output folder (default: the config's output_dir or build/data/<config name>)")
    parser.add_argument("--num-proc", type=int, default=1, help="CPU worker processes (not with accelerate launch)")
    parser.add_argument("--torch-threads", type=int,
                        help="torch intra-op threads per build process (default: 1 on CPU, torch's default on a GPU)")
    parser.add_argument("--limit", type=int, help="use at most N original clips (evenly spread; quick trial builds)")
    parser.add_argument("--overwrite", action="store_true", help="discard a previous build with another config in --output-dir")
    parser.add_argument("--push-to-hub", metavar="REPO", help="upload the finished folder to this Hub dataset repo")
    parser.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    args = parser.parse_args(argv)
    if args.num_proc < 1:
        parser.error("--num-proc must be at least 1")
    if args.torch_threads is not None and args.torch_threads < 1:
        parser.error("--torch-threads must be at least 1")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    return args


def command_line(argv: list[str], num_processes: int) -> str:
    """The command as a user would type it again (for the card)."""
    if num_processes > 1:
        prefix = f"accelerate launch --multi_gpu --num_processes {num_processes} -m datasets_scripts.build"
    elif Path(sys.argv[0]).name == "racl-build":
        prefix = "racl-build"
    else:
        prefix = "python -m datasets_scripts.build"
    return f"{prefix} {shlex.join(argv)}".strip()


def output_dir_for(args: argparse.Namespace, config: BuildConfig) -> Path:
    return Path(args.output_dir or config.output_dir or f"build/data/{config.name}").expanduser().absolute()


def check_resume(output_dir: Path, stamp: dict, overwrite: bool) -> None:
    """Refuse to mix shards of two different configs in one folder."""
    path = output_dir / WORK_DIR / FINGERPRINT
    if overwrite or not path.is_file():
        return
    previous = json.loads(path.read_text())
    if previous.get("fingerprint") != stamp["fingerprint"]:
        raise ConfigError(
            f"{output_dir} holds a build with another config, corpus listing or --limit "
            f"({path}); use a new --output-dir or pass --overwrite to discard it")


def prepare_output(output_dir: Path, stamp: dict, overwrite: bool) -> Path:
    """Create (or reset, with ``overwrite``) the folder; write the fingerprint; drop half-written shards."""
    work_dir = output_dir / WORK_DIR
    if overwrite and work_dir.exists():
        previous = (work_dir / FINGERPRINT).read_text() if (work_dir / FINGERPRINT).is_file() else None
        if previous is None or json.loads(previous).get("fingerprint") != stamp["fingerprint"]:
            for name in (WORK_DIR, DATA_DIR):
                shutil.rmtree(output_dir / name, ignore_errors=True)
            for name in ("README.md", LOG_FILE):
                (output_dir / name).unlink(missing_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    for stale in work_dir.glob(".shard-*.tmp-*"):
        stale.unlink()
    (work_dir / FINGERPRINT).write_text(json.dumps(stamp, indent=2, default=str))
    return work_dir


def setup_logging(output_dir: Path | None, is_main: bool) -> None:
    LOG.setLevel(logging.INFO)
    LOG.propagate = False
    for handler in list(LOG.handlers):
        LOG.removeHandler(handler)
        handler.close()
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("racl-build: %(message)s"))
    LOG.addHandler(console)
    if output_dir is not None and is_main:
        file_handler = logging.FileHandler(output_dir / LOG_FILE, encoding="utf-8")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        LOG.addHandler(file_handler)


def validate(args: argparse.Namespace) -> tuple[BuildConfig, str, Plan, dict]:
    """Everything that can fail before work: config, paradigms, corpora, split plan, fingerprint."""
    config, text = load_config(args.config)
    check_paradigm_requirements(config)
    plan = make_plan(config, args.limit)
    if not plan.items:
        raise ConfigError(f"{args.config}: the sources yield no clips to build (after splitting and --limit)")
    return config, text, plan, fingerprint(config, plan, args.limit)


def push(output_dir: Path, repo: str, private: bool) -> None:
    """Upload the finished folder (data/ and README.md) as a Hub dataset repo."""
    from racl.hub import push_folder

    push_folder(output_dir, repo, repo_type="dataset", private=private, allow_patterns=[f"{DATA_DIR}/*.parquet", "README.md"],
                commit_message="racl-build: hard-sample dataset")
    print(f"racl-build: uploaded {output_dir} to https://huggingface.co/datasets/{repo}")


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit status (2: a config, corpus or paradigm problem, nothing done)."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    import torch
    from accelerate import PartialState

    # cpu=True where there is no GPU: accelerate then runs torchrun's ranks as MULTI_CPU (gloo)
    # instead of seeing one undistributed process per rank.
    # A long timeout: ranks wait at barriers while the slowest finishes its shards or rank 0 assembles.
    state = PartialState(cpu=not torch.cuda.is_available(), timeout=timedelta(hours=BARRIER_TIMEOUT_H))
    if state.num_processes > 1 and args.num_proc > 1:
        print("racl-build: error: use either accelerate launch or --num-proc, not both", file=sys.stderr)
        return 2
    setup_logging(None, state.is_main_process)
    try:
        config, config_text, plan, stamp = validate(args)
        output_dir = output_dir_for(args, config)
        check_resume(output_dir, stamp, args.overwrite)
    except (ConfigError, FileNotFoundError, ValueError, ImportError) as error:
        print(f"racl-build: error: {error}", file=sys.stderr)
        return 2
    run(args, argv, state, config, config_text, plan, stamp, output_dir)
    return 0


def run(args, argv, state, config, config_text, plan, stamp, output_dir: Path) -> None:
    """Prepare the folder, process the pending shards on every rank, assemble on the main one."""
    started = time.time()
    if state.is_main_process:
        prepare_output(output_dir, stamp, args.overwrite)
    state.wait_for_everyone()
    setup_logging(output_dir, state.is_main_process)
    work_dir = output_dir / WORK_DIR
    shards = plan.shards(config.shard_size)
    jobs = [(k, items) for k, items in enumerate(shards) if not shard_path(work_dir, k).is_file()]
    if state.is_main_process:
        workers = f"{state.num_processes} processes" if state.num_processes > 1 else f"{args.num_proc} worker(s)"
        LOG.info("build started: %s (%s, device %s)", command_line(argv, state.num_processes), workers, state.device)
        LOG.info("%d clips in %d shards; %d finished before, %d to do", len(plan.items), len(shards),
                 len(shards) - len(jobs), len(jobs))
        for attack in plan.unused_held_out_attacks:
            LOG.warning("test-only attack %r occurs in no source", attack)
    state.wait_for_everyone()  # every rank has listed the pending shards before any writes one
    run_shards(config, jobs, work_dir, args.num_proc, state, args.torch_threads)
    state.wait_for_everyone()
    if state.is_main_process:
        finish(config, config_text, plan, args, argv, output_dir, len(shards), started, state.num_processes)
    state.wait_for_everyone()


def finish(config, config_text, plan, args, argv, output_dir, num_shards, started, num_processes) -> None:
    """Assemble, write the card, report, and push if asked."""
    from .card import write_card

    result = assemble(config, plan, output_dir / WORK_DIR, output_dir, num_shards)
    write_card(output_dir, config=config, config_text=config_text, plan=plan, result=result,
               command=command_line(argv, num_processes))
    rows, skipped = len(result["rows"]), len(result["skipped"])
    counts = ", ".join(f"{s} {result['info'].get(s, {}).get('num_examples', 0)}" for s in SPLITS)
    LOG.info("build finished in %.1f s: %d rows (%s), %d skipped", time.time() - started, rows, counts, skipped)
    print(f"racl-build: {rows} rows ({counts}), {skipped} skipped (see {output_dir / LOG_FILE}) → {output_dir}")
    if args.push_to_hub:
        push(output_dir, args.push_to_hub, args.private)


if __name__ == "__main__":
    sys.exit(main())
