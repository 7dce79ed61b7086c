"""Gradio Space: is a recording real (bona fide) speech or a deepfake (spoof)?

    python space/app.py --model FOLDER_OR_HUB_ID        # or RACL_MODEL=FOLDER_OR_HUB_ID python space/app.py

In a Space folder made by ``space/assemble.py`` the model comes from ``space_config.json`` beside this
file, and the racl package is installed from the folder's ``requirements.txt``. Python puts this
file's folder first on the import path, so its sibling modules (settings, recording, verdict, render,
detector) import the same way in the checkout and in the Space. The model is loaded once at start;
only an upload over the size limit is refused by gradio itself, with its own message, before any of
this code runs.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

import gradio as gr

from detector import Detector
from racl.scoring import Scorer
from settings import APP_DIR, load_settings
from verdict import format_limit

EXAMPLES_DIR = APP_DIR / "examples"
EXAMPLE_LABELS = {
    "bonafide_fillets_cs.ogg": "Bona fide: a Czech voice actor (Fish Fillets NG)",
    "spoof_espeak_cs.ogg": "Spoof: the same line by espeak-ng TTS",
    "mixed_real_then_espeak_cs.ogg": "Partly fake: the actor, then the TTS",
}
NO_LIMITATIONS = "The model card states no limitations. Treat the verdict as one piece of evidence, not proof."


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
            gr.Markdown(detector.how_to_read())
        with gr.Accordion("Limitations (from the model card)", open=False):
            gr.Markdown(limitations or NO_LIMITATIONS)
        button.click(analyse, inputs=[audio], outputs=[verdict, probability, timeline, spectrogram], api_name="analyse")
    return demo


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = load_settings(argv, description=__doc__.split("\n\n")[0])
    if not settings.model:
        print("app.py: no model given: pass --model FOLDER_OR_HUB_ID or set RACL_MODEL", file=sys.stderr)
        return 2
    try:
        scorer = Scorer.from_pretrained(settings.model, device=settings.device, batch_size=settings.batch_size, precision=settings.precision,
                                        vad=settings.vad)
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
