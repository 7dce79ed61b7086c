"""Train a RACL detector: the design card's top-level script, a thin front to :mod:`racl.training`.

    accelerate launch train_racl.py --config configs/demo.yaml [section.key=value ...] [--resume latest]
    python train_racl.py --config configs/tiny.yaml --seeds 0 1 2        # same as python -m racl.training ...
"""

import sys

from racl.training.cli import main

if __name__ == "__main__":
    sys.exit(main())
