"""Reconstruction paradigms behind one registry (docs/design.md#reconstruction-paradigms).

>>> from datasets_scripts.paradigms import get_reconstructor
>>> world = get_reconstructor("world")
>>> fakes = world.reconstruct([clip_a, clip_b], seed=0)   # 16 kHz float32, same lengths

Each paradigm lives in its own module, imported only when asked for, so a missing optional
package only breaks its own paradigm. A module provides ``RECONSTRUCTOR`` (a
:class:`~datasets_scripts.paradigms.base.Reconstructor` subclass) or a ``build(**options)``
factory, ``REQUIREMENTS`` (import name → install hint), if its default weights come from the
Hub, ``HUB_FILES`` (``(repo, filename)`` pairs that must be cached to run offline), and, if it
needs something other than a Python package (a program), ``unavailable()``: why it cannot run
here, or ``None``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import time

from .base import SAMPLING_RATE, Reconstructor

PARADIGMS: dict[str, str] = {
    name: f"{__name__}.{name}"
    for name in ("diffusion", "hifigan", "encodec", "dac", "semanticodec", "world", "griffinlim", "phasevocoder",
                 "lpc", "codec2", "opus")
}

__all__ = ["PARADIGMS", "Reconstructor", "SAMPLING_RATE", "available_paradigms", "get_reconstructor",
           "measure_rtf", "paradigm_status"]


def _module(name: str):
    if name not in PARADIGMS:
        raise ValueError(f"unknown reconstruction paradigm {name!r}; known: {', '.join(PARADIGMS)}")
    return importlib.import_module(PARADIGMS[name])


def _install_hint(module, missing: str | None) -> str | None:
    requirements = getattr(module, "REQUIREMENTS", {})
    root = (missing or "").split(".")[0]
    return requirements.get(root)


def get_reconstructor(name: str, **options) -> Reconstructor:
    """Build the reconstructor registered as ``name`` with paradigm-specific ``options``.

    ``device`` is accepted by every paradigm (the models are moved after loading).
    Raises ``ValueError`` for an unknown name and ``ImportError`` naming the package to install
    when an optional dependency is missing.
    """
    module = _module(name)
    device = options.pop("device", None)
    factory = getattr(module, "build", None) or module.RECONSTRUCTOR
    try:
        reconstructor = factory(**options)
    except ModuleNotFoundError as error:
        hint = _install_hint(module, error.name)
        if hint is None:
            raise
        raise ImportError(f"the {name!r} paradigm needs {error.name}: {hint}") from error
    return reconstructor.to(device) if device is not None else reconstructor


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("", "0", "false", "no")


def _cached(repo: str, filename: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo, filename), str)


def paradigm_status(offline: bool | None = None) -> dict[str, str]:
    """``name → "ok"`` or why it cannot run here (a missing package or program, uncached Hub weights).

    With ``offline`` (default: ``HF_HUB_OFFLINE`` is set) default weights must already be in the
    Hugging Face cache. Nothing is loaded or downloaded.
    """
    offline = _offline() if offline is None else offline
    status = {}
    for name in PARADIGMS:
        module = _module(name)
        missing = [pkg for pkg in getattr(module, "REQUIREMENTS", {}) if importlib.util.find_spec(pkg) is None]
        uncached = [f"{r}/{f}" for r, f in getattr(module, "HUB_FILES", []) if offline and not _cached(r, f)]
        reason = getattr(module, "unavailable", lambda: None)()
        if missing:
            status[name] = "missing " + "; ".join(f"{pkg} ({module.REQUIREMENTS[pkg]})" for pkg in missing)
        elif reason:
            status[name] = reason
        elif offline and not getattr(module, "RUNS_OFFLINE", True):
            status[name] = "needs the Hub for its weights"
        elif uncached:
            status[name] = "weights not cached: " + ", ".join(uncached)
        else:
            status[name] = "ok"
    return status


def available_paradigms(offline: bool | None = None) -> list[str]:
    """Names of the paradigms that can run here with their default options."""
    return [name for name, state in paradigm_status(offline).items() if state == "ok"]


def measure_rtf(name: str, seconds: float = 10.0, device: str = "cpu", seed: int = 0, **options) -> float:
    """Real-time factor (processing time / audio duration) of one ``seconds``-long clip.

    The clip is :func:`~datasets_scripts.paradigms.signals.synthetic_speech`; model loading and a
    short warm-up call are excluded. Below 1 is faster than real time.
    """
    import torch

    from .signals import synthetic_speech

    reconstructor = get_reconstructor(name, device=device, **options)
    clip = synthetic_speech(seconds, SAMPLING_RATE, seed)
    reconstructor(clip[:SAMPLING_RATE // 2], seed=seed)  # warm-up: lazy init, kernels, caches
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    reconstructor(clip, seed=seed)
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / seconds
