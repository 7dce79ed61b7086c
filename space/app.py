"""Gradio Space: is a recording real (bona fide) speech or a deepfake (spoof)?

    python space/app.py --model FOLDER_OR_HUB_ID        # or RACL_MODEL=FOLDER_OR_HUB_ID python space/app.py

In a Space folder made by ``space/assemble.py`` the model comes from ``space_config.json`` beside this
file. Every setting is taken from its flag, else its environment variable, else ``space_config.json``,
else the default:

    --model        RACL_MODEL         model folder or Hub id (remote code trusted: it is this project's)
    --device       RACL_DEVICE        cpu, cuda, ... (default: cuda if available)
    --batch-size   RACL_BATCH_SIZE    windows per forward pass (16)
    --max-seconds  RACL_MAX_SECONDS   longest recording accepted (1800)
    --max-file-mb  RACL_MAX_FILE_MB   largest upload accepted (200)
    --concurrency  RACL_CONCURRENCY   recordings analysed at once (1); the others wait in the queue
    --queue-size   RACL_QUEUE_SIZE    requests allowed to wait (32)

The model is loaded once at start. Every answer, including "this file cannot be read", is shown in
the page rather than as an error toast; only an upload over the size limit is refused by gradio
itself, with its own message, before any of this code runs.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
import soundfile as sf
from matplotlib.figure import Figure
from PIL import Image

APP_DIR = Path(__file__).resolve().parent


def _make_racl_importable() -> None:
    """In a Space folder where racl is not installed, import it from the wheel beside this file."""
    try:
        import racl  # noqa: F401
    except ImportError:
        wheels = sorted(APP_DIR.glob("racl-*.whl"))
        if wheels:  # a pure-Python wheel is a zip archive that Python imports from directly
            sys.path.insert(0, str(wheels[-1]))


_make_racl_importable()

from racl import SAMPLING_RATE  # noqa: E402
from racl.audio import AudioDecodeError, load_audio  # noqa: E402
from racl.scoring import ClipScore, Scorer, WindowScore, window_spans  # noqa: E402

CONFIG_FILE = APP_DIR / "space_config.json"
EXAMPLES_DIR = APP_DIR / "examples"
MIN_SECONDS = 0.1  # under 400 samples (25 ms) the backbone's convolutions fail; 0.1 s leaves a margin
MAX_PLOT_POINTS = 1500  # timeline points drawn; longer recordings are binned (mean, min-max band)
MAX_SPECTROGRAM_FRAMES = 1500
EXAMPLE_LABELS = {
    "bonafide_fillets_cs.ogg": "Bona fide: a Czech voice actor (Fish Fillets NG)",
    "spoof_espeak_cs.ogg": "Spoof: the same line by espeak-ng TTS",
    "mixed_real_then_espeak_cs.ogg": "Partly fake: the actor, then the TTS",
}
log = logging.getLogger("racl.space")


# ---------------------------------------------------------------------------------------------
# settings


@dataclass
class Settings:
    model: str | None = None
    device: str | None = None
    batch_size: int = 16
    max_seconds: float = 1800.0
    max_file_mb: float = 200.0
    concurrency: int = 1
    queue_size: int = 32
    host: str | None = None  # None: gradio's default (GRADIO_SERVER_NAME, else 127.0.0.1)
    port: int | None = None


_CONFIGURABLE = {  # setting → (environment variable, type)
    "model": ("RACL_MODEL", str),
    "device": ("RACL_DEVICE", str),
    "batch_size": ("RACL_BATCH_SIZE", int),
    "max_seconds": ("RACL_MAX_SECONDS", float),
    "max_file_mb": ("RACL_MAX_FILE_MB", float),
    "concurrency": ("RACL_CONCURRENCY", int),
    "queue_size": ("RACL_QUEUE_SIZE", int),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, (_, kind) in _CONFIGURABLE.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=kind)
    parser.add_argument("--host", help="address to listen on (default: gradio's, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: gradio's, 7860 or the next free one)")
    return parser.parse_args(argv)


def read_space_config(path: Path) -> dict:
    """The Space's own settings; a relative model path is relative to this folder."""
    if not path.exists():
        return {}
    config = json.loads(path.read_text())
    model = config.get("model")
    if model and not os.path.isabs(model) and (path.parent / model).is_dir():
        config["model"] = str(path.parent / model)
    return config


def load_settings(argv: list[str] | None = None) -> Settings:
    """Flag, else environment variable, else space_config.json, else the default."""
    args = parse_args(argv)
    config = read_space_config(CONFIG_FILE)
    settings = Settings(host=args.host, port=args.port)
    for name, (env, kind) in _CONFIGURABLE.items():
        for value in (getattr(args, name), os.environ.get(env) or None, config.get(name)):
            if value is not None:
                setattr(settings, name, kind(value))
                break
    return settings


# ---------------------------------------------------------------------------------------------
# reading and scoring


class InputRejected(Exception):
    """A recording the app will not score; the message is shown in the page as it is."""


def probe_seconds(path: str) -> float | None:
    """Duration from the header, without decoding (None when the header does not say)."""
    try:
        info = sf.info(path)
        return info.frames / info.samplerate if info.samplerate else None
    except Exception:  # not a libsndfile format: ask ffmpeg, and if it cannot tell, decoding will
        pass
    try:
        from torchcodec.decoders import AudioDecoder

        meta = AudioDecoder(path).metadata
        return meta.duration_seconds_from_header or meta.duration_seconds
    except Exception:
        return None


def _too_long(name: str, seconds: float, limit: float) -> InputRejected:
    return InputRejected(
        f"**This recording is too long for this demo:** `{name}` lasts {format_time(seconds)}, "
        f"and at most {format_limit(limit)} are analysed here. Trim it, or score it offline with `racl-score`."
    )


def read_recording(path: str, max_seconds: float) -> np.ndarray:
    """16 kHz mono float32 of ``path``, or :class:`InputRejected` saying why not in plain words."""
    name = Path(path).name
    seconds = probe_seconds(path)
    if seconds is not None and seconds > max_seconds:  # refuse before decoding a huge file into memory
        raise _too_long(name, seconds, max_seconds)
    try:
        wave = load_audio(path)
    except AudioDecodeError as error:
        reason = str(error).replace(path, name)  # the server's temp path means nothing to the user
        raise InputRejected(f"**Could not read this file:** {reason}. Please upload a playable audio file (WAV, FLAC, MP3, OGG, M4A, ...).") from None
    seconds = len(wave) / SAMPLING_RATE
    if seconds > max_seconds:
        raise _too_long(name, seconds, max_seconds)
    if seconds < MIN_SECONDS:
        raise InputRejected(f"**Too short to judge:** `{name}` lasts {seconds * 1000:.0f} ms; at least {MIN_SECONDS * 1000:.0f} ms of audio are needed.")
    return wave


def score_in_chunks(scorer: Scorer, wave: np.ndarray, name: str = "clip", progress=None, chunk_batches: int = 4) -> ClipScore:
    """What ``Scorer.score_waveform`` computes, a few batches of windows at a time.

    Windows are views into ``wave``; only one chunk of normalised copies exists at once, so memory
    beyond the decoded waveform stays bounded for long recordings, and progress can be reported.
    """
    spans = window_spans(len(wave), scorer.window, scorer.hop)
    scores = np.empty(len(spans), dtype=np.float64)
    step = scorer.batch_size * chunk_batches
    for i in range(0, len(spans), step):
        chunk = spans[i : i + step]
        scores[i : i + len(chunk)] = scorer.score_windows([wave[s:e] for s, e in chunk])
        if progress is not None:
            progress((i + len(chunk)) / len(spans), desc=f"scored {i + len(chunk)} of {len(spans)} windows")
    score = float(scores.mean())
    p = scorer.probability(score)
    windows = [WindowScore(s / SAMPLING_RATE, e / SAMPLING_RATE, float(v)) for (s, e), v in zip(spans, scores)]
    label = "bonafide" if p >= 0.5 else "spoof"
    return ClipScore(path=name, score=score, p_bonafide=p, label=label, duration=len(wave) / SAMPLING_RATE, windows=windows)


def decision_threshold(scorer: Scorer) -> float:
    """The score at which the calibrated probability is 50 % (0 for an uncalibrated model)."""
    cfg = scorer.model.config
    return -cfg.calibration_bias / cfg.calibration_scale + 0.0 if cfg.calibration_scale else 0.0  # + 0.0: no '-0.000'


# ---------------------------------------------------------------------------------------------
# what the page shows


def format_time(seconds: float) -> str:
    """12.3 → '0:12.3'; 4000 → '1:06:40'."""
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:02.0f}" if hours else f"{minutes}:{secs:04.1f}"


def format_limit(seconds: float) -> str:
    """1800 → '30 min'; 45 → '45 s'."""
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def spoof_regions(windows: list[WindowScore], threshold: float) -> list[tuple[float, float]]:
    """Stretches of consecutive windows on the spoof side of the threshold, merged."""
    regions: list[list[float]] = []
    for w in windows:
        if w.score >= threshold:
            continue
        if regions and w.start <= regions[-1][1]:
            regions[-1][1] = max(regions[-1][1], w.end)
        else:
            regions.append([w.start, w.end])
    return [(a, b) for a, b in regions]


def verdict_markdown(result: ClipScore, threshold: float, window_s: float, hop_s: float) -> str:
    """The answer in words: verdict, calibrated probability, score and what it means, where it dips."""
    p = result.p_bonafide
    if result.label == "bonafide":
        head = "### Verdict: **bona fide** — this sounds like real recorded speech"
    else:
        head = "### Verdict: **spoof** — this sounds synthetic or manipulated (a deepfake)"
    lines = [
        head,
        f"**Probability bona fide: {100 * p:.1f} %** (calibrated; spoof: {100 * (1 - p):.1f} %)",
        f"**Score: {result.score:+.3f}** — higher = more bona fide; the verdict flips at {threshold:+.3f}.",
        f"Duration {format_time(result.duration)}, {len(result.windows)} window(s) of {window_s:g} s every {hop_s:g} s; "
        "the score is the mean of the window scores.",
    ]
    if len(result.windows) > 1:
        regions = spoof_regions(result.windows, threshold)
        flagged = sum(w.score < threshold for w in result.windows)
        if not regions:
            lines.append("No window falls on the spoof side.")
        else:
            shown = ", ".join(f"{format_time(a)}–{format_time(b)}" for a, b in regions[:6])
            more = f" and {len(regions) - 6} more" if len(regions) > 6 else ""
            lines.append(f"Windows on the spoof side: {flagged} of {len(result.windows)}, at {shown}{more} (see the timeline).")
    return "\n\n".join(lines)


def _render(fig: Figure) -> Image.Image:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def _time_axis(duration: float) -> tuple[str, float]:
    return ("min", 60.0) if duration > 180 else ("s", 1.0)


def bin_series(t: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(t, mean, min, max) over at most ``max_points`` consecutive bins (identity when short enough)."""
    if len(y) <= max_points:
        return t, y, y, y
    starts = np.linspace(0, len(y), max_points + 1).astype(int)[:-1]
    counts = np.diff(np.append(starts, len(y)))
    return np.add.reduceat(t, starts) / counts, np.add.reduceat(y, starts) / counts, np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts)


def timeline_image(result: ClipScore, threshold: float) -> Image.Image | None:
    """Score per window over time, green above the decision threshold and red below (None for one window)."""
    if len(result.windows) < 2:
        return None
    centres = np.array([(w.start + w.end) / 2 for w in result.windows])
    scores = np.array([w.score for w in result.windows])
    t, mean, low, high = bin_series(centres, scores, MAX_PLOT_POINTS)
    unit, scale = _time_axis(result.duration)
    t = t / scale
    fig = Figure(figsize=(9, 2.8))
    ax = fig.add_subplot()
    if len(t) < len(scores):
        ax.fill_between(t, low, high, color="0.6", alpha=0.35, lw=0, label="range within each point")
    ax.fill_between(t, threshold, mean, where=mean >= threshold, interpolate=True, color="tab:green", alpha=0.3, lw=0, label="bona fide side")
    ax.fill_between(t, threshold, mean, where=mean < threshold, interpolate=True, color="tab:red", alpha=0.3, lw=0, label="spoof side")
    if len(scores) <= 60:  # few windows: show the stretch of audio each one covers
        ax.hlines(scores, [w.start / scale for w in result.windows], [w.end / scale for w in result.windows], color="0.15", lw=0.6, alpha=0.5)
    ax.plot(t, mean, color="0.15", lw=1.2, marker="o" if len(t) <= 60 else None, ms=3)
    ax.axhline(threshold, color="k", ls="--", lw=0.8, label=f"threshold {threshold:+.2f}")
    low_y, high_y = min(low.min(), threshold), max(high.max(), threshold)
    pad = 0.1 * (high_y - low_y) or 0.1
    ax.set_ylim(low_y - pad, high_y + pad)
    ax.set_xlim(0, result.duration / scale)
    ax.set_xlabel(f"time ({unit}, window centres)")
    ax.set_ylabel("score")
    ax.set_title("Score per window — higher = more bona fide")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, framealpha=0.8)
    ax.grid(alpha=0.3)
    return _render(fig)


def spectrogram_image(wave: np.ndarray, sr: int = SAMPLING_RATE, n_fft: int = 512) -> Image.Image:
    """Log-magnitude spectrogram, 0 to 8 kHz (what the model hears); long audio is sampled to a bounded number of frames."""
    if len(wave) < n_fft:
        wave = np.pad(wave, (0, n_fft - len(wave)))
    hop = max(n_fft // 4, int(np.ceil((len(wave) - n_fft + 1) / MAX_SPECTROGRAM_FRAMES)))
    frames = np.lib.stride_tricks.sliding_window_view(wave, n_fft)[::hop]  # a view: only kept frames get copied
    magnitude = np.abs(np.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=1))
    db = 20 * np.log10(magnitude + 1e-6)
    db = np.maximum(db, db.max() - 80)
    duration = len(wave) / sr
    unit, scale = _time_axis(duration)
    fig = Figure(figsize=(9, 2.8))
    ax = fig.add_subplot()
    image = ax.imshow(db.T, origin="lower", aspect="auto", cmap="magma", extent=(0, duration / scale, 0, sr / 2000))
    fig.colorbar(image, ax=ax, label="dB", pad=0.01)
    ax.set_xlabel(f"time ({unit})")
    ax.set_ylabel("frequency (kHz)")
    ax.set_title("Spectrogram (16 kHz mono, as the model hears it)")
    return _render(fig)


# ---------------------------------------------------------------------------------------------
# the app


def model_card_section(model: str, heading: str = "Limitations") -> str | None:
    """The body of ``## <heading>`` in the model's README.md (local folder or Hub), if there is one."""
    try:
        if os.path.isdir(model):
            readme = Path(model) / "README.md"
        else:
            from huggingface_hub import hf_hub_download

            readme = Path(hf_hub_download(model, "README.md"))
        text = readme.read_text(encoding="utf-8")
    except Exception:  # no card is not a reason to refuse to start
        return None
    match = re.search(rf"^##\s+{re.escape(heading)}\s*$(.*?)(?=^##\s|\Z)", text, flags=re.M | re.S)
    return match.group(1).strip() if match and match.group(1).strip() else None


class Detector:
    """The loaded model plus the app's limits; ``analyse`` turns one upload into the page's outputs."""

    def __init__(self, scorer: Scorer, settings: Settings):
        self.scorer = scorer
        self.settings = settings
        self.threshold = decision_threshold(scorer)

    @property
    def window_seconds(self) -> float:
        return self.scorer.window / SAMPLING_RATE

    @property
    def hop_seconds(self) -> float:
        return self.scorer.hop / SAMPLING_RATE

    def analyse(self, path: str | None, progress=None):
        """(verdict markdown, {label: probability}, timeline image, spectrogram image)."""
        if not path:
            return _message("Upload a recording or record one with the microphone, then press **Analyse**.")
        try:
            wave = read_recording(path, self.settings.max_seconds)
            result = score_in_chunks(self.scorer, wave, Path(path).name, progress, chunk_batches=4)
            return (
                verdict_markdown(result, self.threshold, self.window_seconds, self.hop_seconds),
                {"bona fide": result.p_bonafide, "spoof": 1.0 - result.p_bonafide},
                timeline_image(result, self.threshold),
                spectrogram_image(wave),
            )
        except InputRejected as rejected:
            return _message(str(rejected))
        except Exception as error:  # keep the page usable; the traceback goes to the server log only
            log.exception("analysis of %s failed", path)
            return _message(f"**Something went wrong while analysing this recording** ({type(error).__name__}). Please try another file.")


def _message(text: str):
    return text, None, None, None


def how_to_read(detector: Detector) -> str:
    return f"""
- **Verdict** — *bona fide* means the detector takes the recording for real human speech recorded by a
  microphone; *spoof* means synthetic or manipulated speech (text-to-speech, voice conversion, or real
  speech passed through a vocoder or neural codec).
- **Probability bona fide** — the model's calibrated probability; the verdict is *bona fide* at 50 % or more.
  It is calibrated on the model's validation data, so it is only as trustworthy as your audio is similar to it.
- **Score** — `logit[bona fide] − logit[spoof]`: **higher = more bona fide**, the ASVspoof convention. The
  verdict flips at {detector.threshold:+.3f} (the dashed line in the timeline).
- **Timeline** — long audio is cut into {detector.window_seconds:g} s windows every {detector.hop_seconds:g} s. The
  overall score is their mean, so a short fake passage inside a long real recording can be outvoted: look for
  red dips below the line. Very long recordings are binned for display (a grey band shows each bin's range).
- **Spectrogram** — the audio as the model gets it (16 kHz mono, so nothing above 8 kHz). Silence, music,
  clipping or telephone band-limiting are visible here and are conditions the model may not have been trained on.
- **Examples** — the TTS clips are spoofs (espeak-ng); the bona fide clip is a Czech voice actor from the game
  Fish Fillets NG (GPL-2); the partly fake clip is that actor followed by the TTS.
"""


def build_demo(detector: Detector, limitations: str | None = None, model_name: str = "") -> gr.Blocks:
    """The page: input and examples on the left, the answer on the right, plots and explanations below."""

    def analyse(audio_path, progress=gr.Progress()):
        return detector.analyse(audio_path, progress)

    with gr.Blocks(title="RACL audio deepfake detector", analytics_enabled=False) as demo:
        gr.Markdown(
            "# Is this voice real? — RACL audio deepfake detector\n"
            "Upload a recording (WAV, FLAC, MP3, OGG, M4A, ...) or record one with your microphone, then press **Analyse**. "
            f"Up to {format_limit(detector.settings.max_seconds)} and {detector.settings.max_file_mb:g} MB per file."
            + (f" Model: `{model_name}`." if model_name else "")
        )
        with gr.Row():
            with gr.Column():
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Recording", elem_id="audio-input")
                button = gr.Button("Analyse", variant="primary", elem_id="analyse-button")
                examples = sorted(EXAMPLES_DIR.glob("*.ogg")) if EXAMPLES_DIR.is_dir() else []
                if examples:
                    gr.Examples(
                        examples=[[str(p)] for p in examples],
                        inputs=[audio],
                        example_labels=[EXAMPLE_LABELS.get(p.name, p.stem) for p in examples],
                        cache_examples=False,
                    )
            with gr.Column():
                verdict = gr.Markdown("Results appear here.", elem_id="verdict")
                probability = gr.Label(label="Calibrated probability", num_top_classes=2, elem_id="probability")
        timeline = gr.Image(label="Timeline: score per window", type="pil", format="png", interactive=False, elem_id="timeline")
        spectrogram = gr.Image(label="Spectrogram", type="pil", format="png", interactive=False, elem_id="spectrogram")
        with gr.Accordion("How to read this", open=False):
            gr.Markdown(how_to_read(detector))
        with gr.Accordion("Limitations (from the model card)", open=False):
            gr.Markdown(limitations or "The model card states no limitations. Treat the verdict as one piece of evidence, not proof.")
        button.click(analyse, inputs=[audio], outputs=[verdict, probability, timeline, spectrogram], api_name="analyse")
    return demo


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = load_settings(argv)
    if not settings.model:
        print("app.py: no model given: pass --model FOLDER_OR_HUB_ID or set RACL_MODEL", file=sys.stderr)
        return 2
    try:
        scorer = Scorer.from_pretrained(settings.model, device=settings.device, batch_size=settings.batch_size)
    except (OSError, ValueError) as error:
        print(f"app.py: cannot load model {settings.model!r}: {error}", file=sys.stderr)
        return 2
    detector = Detector(scorer, settings)
    name = settings.model if not os.path.isdir(settings.model) else Path(settings.model).name
    demo = build_demo(detector, model_card_section(settings.model), name)
    demo.queue(default_concurrency_limit=settings.concurrency, max_size=settings.queue_size)
    demo.launch(
        server_name=settings.host,
        server_port=settings.port,
        max_file_size=int(settings.max_file_mb * 1024 * 1024),
        allowed_paths=[str(EXAMPLES_DIR)],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
