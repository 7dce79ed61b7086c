"""The Space's settings: each from its flag, else its environment variable, else ``space_config.json``
(written by ``space/assemble.py`` beside the app), else the default.

    --model        RACL_MODEL         model folder or Hub id (remote code trusted: it is this project's)
    --device       RACL_DEVICE        cpu, cuda, ... (default: cuda if available)
    --batch-size   RACL_BATCH_SIZE    windows per forward pass (16)
    --precision    RACL_PRECISION     fp32, bf16 or int8 (racl.precision; fp32)
    --vad          RACL_VAD           1: only windows with speech vote, "no speech" without any (silero-vad); 0: off (1)
    --max-seconds  RACL_MAX_SECONDS   longest recording accepted (1800)
    --max-file-mb  RACL_MAX_FILE_MB   largest upload accepted (200)
    --concurrency  RACL_CONCURRENCY   recordings analysed at once (1); the others wait in the queue
    --queue-size   RACL_QUEUE_SIZE    requests allowed to wait (32)
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent
CONFIG_FILE = APP_DIR / "space_config.json"


@dataclass
class Settings:
    model: str | None = None
    device: str | None = None
    batch_size: int = 16
    precision: str = "fp32"
    vad: bool = True
    max_seconds: float = 1800.0
    max_file_mb: float = 200.0
    concurrency: int = 1
    queue_size: int = 32
    host: str | None = None  # None: gradio's default (GRADIO_SERVER_NAME, else 127.0.0.1)
    port: int | None = None


def switch(value) -> bool:
    """'1', 'true', 'yes', 'on' (any case) and True are on; '0', 'false', 'no', 'off' and False are off."""
    text = str(value).strip().lower()
    if text not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ValueError(f"expected 1 or 0 (on or off), got {value!r}")
    return text in ("1", "true", "yes", "on")


CONFIGURABLE = {  # setting → (environment variable, type)
    "model": ("RACL_MODEL", str),
    "device": ("RACL_DEVICE", str),
    "batch_size": ("RACL_BATCH_SIZE", int),
    "precision": ("RACL_PRECISION", str),
    "vad": ("RACL_VAD", switch),
    "max_seconds": ("RACL_MAX_SECONDS", float),
    "max_file_mb": ("RACL_MAX_FILE_MB", float),
    "concurrency": ("RACL_CONCURRENCY", int),
    "queue_size": ("RACL_QUEUE_SIZE", int),
}


def parse_args(argv: list[str] | None, description: str | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="app.py", description="\n\n".join(filter(None, [description, __doc__])), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for name, (_, kind) in CONFIGURABLE.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=kind)
    parser.add_argument("--host", help="address to listen on (default: gradio's, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: gradio's, 7860 or the next free one)")
    return parser.parse_args(argv)


def read_space_config(path: Path) -> dict:
    """The Space's own settings; a relative model path is relative to the Space folder."""
    if not path.exists():
        return {}
    config = json.loads(path.read_text())
    model = config.get("model")
    if model and not os.path.isabs(model) and (path.parent / model).is_dir():
        config["model"] = str(path.parent / model)
    return config


def load_settings(argv: list[str] | None = None, config_file: Path | None = None, description: str | None = None) -> Settings:
    """Flag, else environment variable, else ``config_file`` (default: the one beside the app), else the default."""
    args = parse_args(argv, description)
    config = read_space_config(config_file or CONFIG_FILE)
    settings = Settings(host=args.host, port=args.port)
    for name, (env, kind) in CONFIGURABLE.items():
        for value in (getattr(args, name), os.environ.get(env) or None, config.get(name)):
            if value is not None:
                setattr(settings, name, kind(value))
                break
    return settings
