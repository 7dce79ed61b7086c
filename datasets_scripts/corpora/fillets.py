"""Bona fide speech of the offline demo corpus: the spoken dialogue of Fish Fillets NG.

Debian ships the game's Czech and Dutch voice tracks (``fillets-ng-data-cs``,
``fillets-ng-data-nl``; GPL) as Ogg Vorbis files, one per line of dialogue::

    <root>/sound/<level>/<lang>/<dialog id>.ogg

and the texts in the game's Lua scripts (``fillets-ng-data``, UTF-8)::

    <root>/script/<level>/dialogs_<lang>.lua        (briefcase/brief_dialogs_<lang>.lua too)
    dialogId("let-v-oko", "font_big", "<English reference text>")
    dialogStr("<the sentence in <lang>>")

Speaker identity: the game gives every character its own subtitle font, the second argument of
``dialogId``; we take that font as the voice identity and name the speaker ``<lang>-<character>``:

============== ============ =====================================================================
font           character    who
============== ============ =====================================================================
font_small     small_fish   the small orange fish (ids ``<level>-m-...``, "malá")
font_big       big_fish     the big blue fish (ids ``<level>-v-...``, "velká")
font_white     white        the FDTO chief: the briefing tape, the letters, "I hear everything!"
font_<name>    <name>       minor characters: statue, parrot, robodog, crab, snail, vikings 1-8,
                            linuxer1/2, the skull and others (lightgrey), ... (Czech only)
============== ============ =====================================================================

The Dutch dub voices the two fish only, so Dutch has two speakers. Left out: lines without a voice
file, sound effects with empty text, template lines with ``%`` placeholders (their audio is not the
text), and the one line both fish say together (``font_both``, two voices at once). The game ships
English voice files too; they stay out of the demo corpus.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator

import soundfile as sf

from ..schema import BONAFIDE, NO_ATTACK, ClipRecord
from . import spread

DATA_ROOT = "/usr/share/games/fillets-ng"
CORPUS = "demo"
LANGUAGES = ("cs", "nl")
DEBIAN_PACKAGES = {"cs": "fillets-ng-data-cs", "nl": "fillets-ng-data-nl", "text": "fillets-ng-data"}
CHARACTER_NAMES = {"font_small": "small_fish", "font_big": "big_fish"}
EXCLUDED_FONTS = {"", "font_both"}

_LUA_STRING = r'"((?:[^"\\]|\\.)*)"'
_DIALOG = re.compile(
    r"dialogId\(\s*" + _LUA_STRING + r"\s*,\s*" + _LUA_STRING + r"\s*,\s*" + _LUA_STRING + r"\s*\)"
    r"\s*dialogStr\(\s*" + _LUA_STRING + r"\s*\)",
    re.S,
)
_LUA_ESCAPES = {"n": " ", "t": " ", '"': '"', "'": "'", "\\": "\\", "/": "/"}


def _unescape(text: str) -> str:
    """Undo Lua string escapes and fold whitespace (the game uses ``\\n`` as a line break)."""
    text = re.sub(r"\\(.)", lambda m: _LUA_ESCAPES.get(m[1], m[1]), text)
    return " ".join(text.split())


def character(font: str) -> str:
    """The character (voice) name for a subtitle font."""
    return CHARACTER_NAMES.get(font, font.removeprefix("font_"))


def parse_dialogs(lua_text: str) -> Iterator[tuple[str, str, str]]:
    """(dialog id, font, sentence) for each ``dialogId(...) dialogStr(...)`` pair of a Lua script."""
    for match in _DIALOG.finditer(lua_text):
        yield match[1], match[2], _unescape(match[4])


def _check_installed(root: str, language: str) -> None:
    if not os.path.isdir(os.path.join(root, "script")):
        raise FileNotFoundError(f"{root}: no fillets-ng data here; install the Debian package {DEBIAN_PACKAGES['text']}")
    if not glob.glob(os.path.join(root, "sound", "*", language, "*.ogg")):
        raise FileNotFoundError(f"{root}: no {language} voice files; install the Debian package {DEBIAN_PACKAGES[language]}")


def _voice_file(root: str, level: str, language: str, dialog_id: str) -> str | None:
    folder = os.path.join(root, "sound", level, language)
    for name in (dialog_id, dialog_id.replace("-", "_")):  # one Dutch file uses underscores
        path = os.path.join(folder, name + ".ogg")
        if os.path.isfile(path):
            return path
    return None


def _keep(font: str, text: str) -> bool:
    return font not in EXCLUDED_FONTS and bool(text.strip()) and "%" not in text


def iter_language(root: str, language: str) -> Iterator[ClipRecord]:
    """Every voiced line of one language, sorted by level then dialog id."""
    _check_installed(root, language)
    scripts = sorted(glob.glob(os.path.join(root, "script", "*", f"*dialogs_{language}.lua")))
    lines: dict[tuple[str, str], tuple[str, str]] = {}
    for script in scripts:
        level = os.path.basename(os.path.dirname(script))
        with open(script, encoding="utf-8") as f:
            for dialog_id, font, text in parse_dialogs(f.read()):
                lines[(level, dialog_id)] = (font, text)
    for (level, dialog_id), (font, text) in sorted(lines.items()):
        path = _voice_file(root, level, language, dialog_id) if _keep(font, text) else None
        if path is None:
            continue
        yield ClipRecord(
            path=path,
            utt_id=f"fillets-{language}-{level}-{dialog_id}",
            label=BONAFIDE,
            speaker=f"{language}-{character(font)}",
            corpus=CORPUS,
            attack=NO_ATTACK,
            extra={"text": text, "language": language, "level": level, "font": font},
        )


def iter_clips(
    root: str | None = None,
    split: str | None = None,
    languages: tuple[str, ...] | list[str] = LANGUAGES,
    limit: int | None = None,
    with_duration: bool = False,
    **options,
) -> Iterator[ClipRecord]:
    """Yield the bona fide dialogue clips (label 0, attack "-", corpus "demo").

    The game has no official split: ``split`` must be None or "all"; the build makes the
    speaker-disjoint splits. ``limit`` caps the clips per language (evenly spread over the
    sorted list, so every level and speaker can appear). ``with_duration`` adds
    ``extra["duration"]`` (seconds, from the file header). Other options are ignored.
    """
    if split not in (None, "all"):
        raise ValueError(f"the demo corpus has no official {split!r} split; pass split=None and split by speaker in the build")
    root = root or DATA_ROOT
    for language in languages:
        if language not in LANGUAGES:
            raise ValueError(f"language {language!r}: the demo corpus has {LANGUAGES}")
        for record in spread(list(iter_language(root, language)), limit):
            if with_duration:
                record.extra["duration"] = float(sf.info(record.path).duration)
            yield record


def corpus_sentences(language: str, root: str | None = None) -> list[tuple[str, str]]:
    """(utt_id, sentence) of every voiced line of ``language``: the texts the TTS spoofers speak."""
    return [(r.utt_id, r.extra["text"]) for r in iter_clips(root, languages=(language,))]
