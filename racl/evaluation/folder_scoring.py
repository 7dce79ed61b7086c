"""racl-score across processes and GPUs: each process scores its share of the files, all append to one file.

    accelerate launch --multi_gpu --num_processes 2 -m racl.evaluation.folder_scoring \\
        --model FOLDER_OR_HUB_ID --out scores.jsonl [racl-score's options] PATH...

(``--multi_gpu`` is Accelerate's torchrun launcher: without GPUs its processes share the CPU cores.)

The files not yet in ``--out`` are split between the processes (Accelerate's
``split_between_processes``: contiguous shares in sorted order); every result is appended as one line
the moment it is made (``racl.folder_scoring``), so a run killed at any point is resumed by running
the same command again: the files already there are skipped, none is scored twice. Rows come in the
order they are finished, not in the order of the files.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
from accelerate import PartialState

from ..audio import find_audio_files
from ..folder_scoring import ResultsFile
from ..scoring import COLUMNS, add_scoring_arguments, result_row, scorer_from_args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="racl.evaluation.folder_scoring", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scoring_arguments(parser)
    parser.add_argument("--out", required=True, help="the .jsonl or .csv every process appends to; files already in it are skipped")
    parser.add_argument("--files-per-batch", type=int, default=8, help="short files decoded and scored together")
    parser.add_argument("--threads", type=int, help="torch threads per process on the CPU (default: the cores shared out between the processes)")
    args = parser.parse_args(argv)

    # cpu=True where there is no GPU: torchrun's ranks then run as MULTI_CPU (gloo) instead of as one undistributed process each
    accelerator = PartialState(cpu=not torch.cuda.is_available())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if accelerator.device.type == "cpu":  # the processes share the cores: one process's threads should not take them all
        torch.set_num_threads(args.threads or max(1, cores // accelerator.num_processes))
    try:
        if accelerator.is_main_process:
            ResultsFile.open(args.out, COLUMNS, result_row)  # cut a killed run's unfinished line before anyone appends
        accelerator.wait_for_everyone()
        results = ResultsFile(args.out, COLUMNS, result_row)
        scorer = scorer_from_args(args, None if args.backend == "onnx" else accelerator.device)
    except (OSError, ValueError) as error:
        print(f"racl-score: {error}", file=sys.stderr)
        return 2
    paths = find_audio_files(args.paths)
    todo = results.todo(paths)
    if accelerator.is_main_process:
        print(f"racl-score: {len(todo)} of {len(paths)} files to score on {accelerator.num_processes} process(es), "
              f"{cores} core(s) available, {torch.get_num_threads()} thread(s) each", file=sys.stderr)
    start, scored, failed = time.perf_counter(), 0, 0
    with accelerator.split_between_processes(todo) as mine:
        for r in scorer.iter_files(mine, files_per_batch=args.files_per_batch, progress=accelerator.is_main_process and sys.stderr.isatty()):
            results.write(r)
            scored += 1
            if r.error:
                failed += 1
                print(f"racl-score: {r.error}", file=sys.stderr)
    elapsed = time.perf_counter() - start
    print(f"racl-score: process {accelerator.process_index}: {scored} files in {elapsed:.1f} s ({scored / max(elapsed, 1e-9):.2f} files/s)", file=sys.stderr)
    return 1 if failed else 0  # no barrier at the end: a process with the longer files must not time the others out


if __name__ == "__main__":
    sys.exit(main())
