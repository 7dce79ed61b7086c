"""``python -m racl.training``: the training CLI (:mod:`racl.training.cli`)."""

import sys

from .cli import main

sys.exit(main())
