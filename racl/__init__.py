"""racl: tooling around the RACL detector (audio I/O, scoring, export, metrics, evaluation).

The model itself lives in ``modeling_racl`` (also the Hub remote-code folder, torch + transformers only).
"""

__version__ = "0.1.0"

from .labels import SAMPLING_RATE  # noqa: E402  (one definition: the model folder's)
