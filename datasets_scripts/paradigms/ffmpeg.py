"""Codec round trips through the ``ffmpeg`` program (the ``codec2`` and ``opus`` paradigms).

Raw PCM goes in on stdin and the encoded stream comes out on stdout, then back the same way: no
temporary files, one single-threaded process per direction. The program is the one racl already
needs for decoding (:data:`racl.audio.DEBIAN_PACKAGES`, installed by ``scripts/setup.sh``); Debian's
build links libcodec2 and libopus.
"""

from __future__ import annotations

import functools
import shutil
import subprocess

import numpy as np

DEBIAN_PACKAGES = ("ffmpeg",)  # the same declaration as racl.audio's (tests check it is covered)
INSTALL_HINT = "install the Debian package ffmpeg (apt-get install ffmpeg)"
TIMEOUT_S = 120


def program() -> str:
    """The path of ``ffmpeg``; ``FileNotFoundError`` saying what to install where it is missing."""
    path = shutil.which("ffmpeg")
    if path is None:
        raise FileNotFoundError(f"the ffmpeg program is not on PATH: {INSTALL_HINT}")
    return path


@functools.lru_cache(maxsize=None)
def _encoders(path: str) -> frozenset[str]:
    done = subprocess.run([path, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=60)
    # Rows look like " A....D libopus   libopus Opus ..." after a "------" separator.
    rows = done.stdout.split("------", 1)[-1].splitlines()
    return frozenset(row.split()[1] for row in rows if len(row.split()) > 1)


def unavailable(encoder: str) -> str | None:
    """Why ``encoder`` cannot run here (no ffmpeg, or an ffmpeg built without it), else ``None``."""
    path = shutil.which("ffmpeg")
    if path is None:
        return f"missing the ffmpeg program ({INSTALL_HINT})"
    if encoder not in _encoders(path):
        return f"this ffmpeg has no {encoder} encoder (Debian's ffmpeg package has it)"
    return None


def require(encoder: str) -> None:
    """Raise a clear error where ``encoder`` cannot run (see :func:`unavailable`)."""
    reason = unavailable(encoder)
    if reason is not None:
        error = FileNotFoundError if shutil.which("ffmpeg") is None else RuntimeError
        raise error(f"the {encoder} round trip needs ffmpeg: {reason}")


def run(args: list[str], data: bytes) -> bytes:
    """``ffmpeg -i - <args> -`` with ``data`` on stdin; its stdout, or ``RuntimeError`` with its log."""
    command = [program(), "-hide_banner", "-loglevel", "error", "-threads", "1", *args]
    try:
        done = subprocess.run(command, input=data, capture_output=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"ffmpeg took over {TIMEOUT_S} s: {' '.join(command)}") from error
    if done.returncode != 0:
        log = done.stderr.decode(errors="replace").strip()[-2000:]
        raise RuntimeError(f"ffmpeg failed (exit {done.returncode}): {' '.join(command)}\n{log}")
    return done.stdout


def to_s16(wave: np.ndarray) -> bytes:
    """Little-endian 16-bit PCM of a float clip (clipped to [-1, 1])."""
    return (np.clip(wave, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def from_s16(data: bytes) -> np.ndarray:
    """float32 samples of little-endian 16-bit PCM."""
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
