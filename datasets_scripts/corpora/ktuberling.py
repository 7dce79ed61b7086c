"""Bona fide words in many languages: the spoken object names of KTuberling (Debian ``ktuberling-data``; GPL).

The game names each stamp aloud, one recording per word and language, listed in a theme file per
language::

    <root>/<lang>.soundtheme           <sound name="hat" file="de/hat.ogg" />
    <root>/<lang>/<file>.ogg|.wav|...  the recording (Vorbis or PCM; Nynorsk is Opus)

Each language's words are one speaker here (``ktuberling-<lang>``): real speech of languages the demo's
dialogue corpus lacks. ``configs/data/demo_*_multilang.yaml`` add them to the training split; measured,
that made the demo detector worse, so the default builds leave them out (docs/design.md#the-demo-corpus).

Left out by default (``DEFAULT_LANGUAGES``): English (no English speech in the demo), Dutch and Low
Saxon (the cross-language split tests on Dutch), Nynorsk (its files are Opus-coded, and Opus is one
of the demo's reconstruction paradigms) and the three other spellings of Serbian (the same recordings).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator

import soundfile as sf

from ..schema import BONAFIDE, NO_ATTACK, ClipRecord
from . import require_dir, spread

DATA_ROOT = "/usr/share/ktuberling/sounds"
CORPUS = "ktuberling"
DEBIAN_PACKAGE = "ktuberling-data"
DEFAULT_LANGUAGES = ("ca", "da", "de", "el", "es", "fi", "fr", "ga", "gl", "it", "lt", "pt", "ro", "ru", "sl", "sr", "sv", "uk", "wa")


def theme_files(root: str, language: str) -> list[tuple[str, str]]:
    """(word, absolute path) of every recording a language's theme file lists, in the file's order."""
    theme = os.path.join(root, f"{language}.soundtheme")
    if not os.path.isfile(theme):
        have = sorted(name.removesuffix(".soundtheme") for name in os.listdir(root) if name.endswith(".soundtheme"))
        raise FileNotFoundError(f"{theme}: no such theme file; languages here: {', '.join(have)}")
    try:
        sounds = ElementTree.parse(theme).getroot().iter("sound")
    except ElementTree.ParseError as error:
        raise ValueError(f"{theme}: not a readable theme file ({error})") from None
    files = [(s.get("name", ""), os.path.join(root, s.get("file", ""))) for s in sounds]
    return [(word, path) for word, path in files if word and os.path.isfile(path)]


def iter_clips(
    root: str | None = None,
    split: str | None = None,
    languages: tuple[str, ...] | list[str] = DEFAULT_LANGUAGES,
    per_language: int | None = None,
    min_seconds: float = 0.5,
    **options,
) -> Iterator[ClipRecord]:
    """Yield the recorded words (label 0, attack "-", corpus "ktuberling"), language by language.

    The game has no split (``split`` must be None or "all"; the build assigns one). Words shorter than
    ``min_seconds`` are skipped; ``per_language`` caps the words per language, spread evenly over the
    theme file's list. Other options are ignored.
    """
    if split not in (None, "all"):
        raise ValueError(f"ktuberling has no official {split!r} split; pass split=None and assign one in the build")
    root = str(require_dir(root or DATA_ROOT, f"KTuberling's sounds (install the Debian package {DEBIAN_PACKAGE})"))
    for language in languages:
        words = [(w, p, sf.info(p).duration) for w, p in theme_files(root, language)]
        for word, path, duration in spread([(w, p, d) for w, p, d in words if d >= min_seconds], per_language):
            yield ClipRecord(
                path=path,
                utt_id=f"ktuberling-{language}-{os.path.splitext(os.path.basename(path))[0]}",
                label=BONAFIDE,
                speaker=f"ktuberling-{language}",
                corpus=CORPUS,
                attack=NO_ATTACK,
                extra={"word": word, "language": language, "duration": float(duration)},
            )
