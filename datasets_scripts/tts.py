"""Offline TTS spoofers for the demo corpus: the corpus's own sentences, spoken by Debian TTS.

Every system is a separate attack (the ``attack`` column). Two engines, no network, no weights:

- ``espeak-ng`` (formant synthesis; Debian ``espeak-ng``): per language the default voice, the
  ``+f3`` female variant and the ``+klatt`` variant (the Klatt synthesiser instead of eSpeak's own).
- Festival (Debian ``festival``) with the four Czech voices of ``festvox-czech-*`` (diphone/unit
  voices recorded by different speakers), run through ``text2wave``. Festival reads Czech text in
  ISO-8859-2: UTF-8 bytes are spelled out letter by letter, so the text is transcoded first.

Outputs are WAV files at the engine's own rate (22.05, 32 or 44.1 kHz); the build resamples and
runs :func:`datasets_scripts.postprocess.finalize` on them like on every other clip.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

# Each engine's Debian package (its program); a voice's own package is TTSSystem.package.
ENGINE_PACKAGES = {"espeak-ng": "espeak-ng", "festival": "festival"}
FESTIVAL_VOICE_DIRS = ("/usr/share/festival/voices", "/usr/lib/festival/voices")
TIMEOUT_S = 120
# Typographic characters ISO-8859-2 lacks; festival would otherwise get "?" for them.
_ASCII_PUNCTUATION = str.maketrans({"’": "'", "‘": "'", "‚": ",", "“": '"', "”": '"', "„": '"', "…": "...", "–": "-", "—": "-", "\u00a0": " "})


@dataclass(frozen=True)
class TTSSystem:
    """One spoofing system: engine, voice, the language it speaks and the Debian package it needs."""

    name: str
    engine: str  # "espeak-ng" or "festival"
    voice: str  # espeak-ng voice spec ("cs+f3") or festival voice function ("voice_czech_dita")
    language: str
    package: str


def _espeak(language: str, variant: str = "") -> TTSSystem:
    suffix = f"-{variant}" if variant else ""
    voice = f"{language}+{variant}" if variant else language
    return TTSSystem(f"espeak-ng-{language}{suffix}", "espeak-ng", voice, language, "espeak-ng")


def _festival(voice: str) -> TTSSystem:
    return TTSSystem(f"festival-cs-{voice}", "festival", f"voice_czech_{voice}", "cs", f"festvox-czech-{voice}")


TTS_SYSTEMS: dict[str, TTSSystem] = {
    s.name: s
    for s in (
        _espeak("cs"),
        _espeak("cs", "f3"),
        _espeak("cs", "klatt"),
        _espeak("nl"),
        _espeak("nl", "f3"),
        _espeak("nl", "klatt"),
        _festival("dita"),
        _festival("krb"),
        _festival("machac"),
        _festival("ph"),
    )
}


def _festival_voice_installed(voice: str) -> bool:
    name = voice.removeprefix("voice_")
    return any(glob.glob(os.path.join(d, "*", name)) for d in FESTIVAL_VOICE_DIRS)


def missing_reason(system: str) -> str | None:
    """Why ``system`` cannot run here (naming the Debian package to install), or None if it can."""
    spec = get_system(system)
    if spec.engine == "espeak-ng":
        return None if shutil.which("espeak-ng") else f"espeak-ng not found; install the Debian package {ENGINE_PACKAGES['espeak-ng']}"
    if not shutil.which("text2wave"):
        return f"text2wave not found; install the Debian package {ENGINE_PACKAGES['festival']}"
    if not _festival_voice_installed(spec.voice):
        return f"Festival voice {spec.voice} not installed; install the Debian package {spec.package}"
    return None


def get_system(system: str) -> TTSSystem:
    """The :class:`TTSSystem` called ``system``; a clear KeyError listing the known ones otherwise."""
    try:
        return TTS_SYSTEMS[system]
    except KeyError:
        raise KeyError(f"unknown TTS system {system!r}; known: {', '.join(TTS_SYSTEMS)}") from None


def available_systems(language: str | None = None) -> list[str]:
    """Names of the systems that can run on this machine (optionally only those speaking ``language``)."""
    return [n for n, s in TTS_SYSTEMS.items() if (language in (None, s.language)) and missing_reason(n) is None]


def festival_text(text: str) -> bytes:
    """Czech text as Festival wants it: ISO-8859-2, typographic punctuation folded to ASCII."""
    return " ".join(text.translate(_ASCII_PUNCTUATION).split()).encode("iso-8859-2", errors="replace")


def _run(cmd: list[str], stdin: bytes | None, system: str) -> str:
    done = subprocess.run(cmd, input=stdin, capture_output=True, timeout=TIMEOUT_S)
    err = done.stderr.decode("utf-8", errors="replace").strip()
    # text2wave exits 0 even when the voice is unknown; its Lisp errors only show on stderr.
    if done.returncode != 0 or "SIOD ERROR" in err:
        raise RuntimeError(f"{system}: {' '.join(cmd[:3])} ... failed (exit {done.returncode}): {err[-500:]}")
    return err


def synthesize(system: str, text: str, out_path: str) -> str:
    """Speak ``text`` with ``system`` into the WAV file ``out_path``; return ``out_path``.

    Raises RuntimeError naming the Debian package to install when the engine or voice is missing,
    and when the engine writes no audio.
    """
    spec = get_system(system)
    reason = missing_reason(system)
    if reason:
        raise RuntimeError(f"{system}: {reason}")
    if not text.strip():
        raise ValueError(f"{system}: empty text")
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    if spec.engine == "espeak-ng":
        # -b 1: the text is UTF-8 whatever the locale; --stdin: text never parsed as options.
        _run(["espeak-ng", "-v", spec.voice, "-b", "1", "-w", out_path, "--stdin"], text.encode("utf-8"), system)
    else:
        with tempfile.NamedTemporaryFile(suffix=".txt") as tmp:
            tmp.write(festival_text(text))
            tmp.flush()
            _run(["text2wave", "-eval", f"({spec.voice})", tmp.name, "-o", out_path], None, system)
    if not os.path.isfile(out_path) or os.path.getsize(out_path) <= 44:
        raise RuntimeError(f"{system}: no audio written to {out_path} for text {text[:60]!r}")
    return out_path
