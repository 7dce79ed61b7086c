"""``python -m racl.evaluation``: the ``racl-eval`` CLI (:mod:`racl.evaluation.cli`)."""

import sys

from .cli import main

sys.exit(main())
