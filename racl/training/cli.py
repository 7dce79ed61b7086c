"""Train a RACL detector with Accelerate.

    accelerate launch train_racl.py --config configs/demo.yaml [section.key=value ...] [--resume latest]
    python -m racl.training --config configs/tiny.yaml --seeds 0 1 2        # several seeds, mean ± std

The dataset is a folder written by ``datasets_scripts.build`` (or a Hub id) with the columns of
docs/design.md#dataset-schema. Batches keep originals with their reconstructions
(``racl.training.sampler``); crops and augmentation are drawn from generators seeded by (seed, step,
process), so a run resumed from a checkpoint with ``--resume`` continues bit-exactly on CPU. The best
model (by validation EER, not loss) is written as a Hub-ready folder to ``<output_dir>/best``.

Exit status 0 on success, 2 on a config or dataset that cannot be used, 3 when training stops on a
non-finite loss or on a clip it cannot decode (the last good checkpoint is kept).
"""

from __future__ import annotations

import argparse
import json
import sys

from ..audio import AudioDecodeError
from .config import ConfigError, load_train_config
from .loop import NonFiniteLoss, train
from .seeds import multi_seed

PROG = "train_racl"


def _last_line(error: Exception) -> str:
    # A DataLoader worker's error arrives with the worker's traceback in its message; its last line is the reason.
    line = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
    return line.split(f"{type(error).__name__}: ", 1)[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="training YAML (configs/*.yaml)")
    parser.add_argument("--resume", help="'latest' or a checkpoint folder under <output_dir>/checkpoints")
    parser.add_argument("--seeds", type=int, nargs="+", help="train once per seed (output_dir/seed-N) and report mean ± std")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. training.max_steps=20")
    args = parser.parse_args(argv)
    try:
        cfg = load_train_config(args.config, args.overrides)
        if args.seeds:
            print(json.dumps(multi_seed(cfg, args.seeds), indent=2))
        else:
            print(json.dumps(train(cfg, resume=args.resume), indent=2, default=float))
    except ConfigError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    except (NonFiniteLoss, AudioDecodeError) as error:
        reason = str(error) if isinstance(error, NonFiniteLoss) else _last_line(error)
        print(f"{PROG}: {reason}; the last good checkpoint is kept under {cfg.training.output_dir}/checkpoints", file=sys.stderr)
        return 3
    return 0


__all__ = ["main"]
