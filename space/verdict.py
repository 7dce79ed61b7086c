"""What the page says in words: the verdict, the calibrated probability, the score and where it dips.

Polarity as everywhere in racl: ``score = logit[bonafide] - logit[spoof]``, higher = more bona fide.
"""

from __future__ import annotations

from racl.labels import BONAFIDE, LABEL_NAMES
from racl.scoring import NO_SPEECH, ClipScore, WindowScore

MAX_REGIONS_LISTED = 6  # spoof-side stretches named in the text; the timeline shows all of them


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
    if result.label == NO_SPEECH:
        return "\n\n".join([
            "### Verdict: **no speech** — nothing here to judge",
            f"The speech detector found no stretch of speech in this recording ({format_time(result.duration)}): silence, noise "
            "or music are not speech, and the detector only judges whether speech is real. Upload a recording with someone speaking.",
        ])
    p = result.p_bonafide
    if result.label == LABEL_NAMES[BONAFIDE]:
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
    if result.familiar is False:  # the check only exists where the model was fitted with it
        lines.insert(1, "**Warning: this recording is unlike the audio the detector was trained on** (its familiarity "
                        f"distance {result.familiarity:.3f} is above the model's threshold): the verdict and the probability "
                        "were never checked on audio like this and can be wrong either way. On real recordings from elsewhere "
                        "such a detector often calls real speech spoof.")
    voting = [w for w in result.windows if w.votes]
    if len(voting) < len(result.windows):
        lines.append(f"Only the {len(voting)} of {len(result.windows)} windows that hold speech vote; the others (silence, noise) are left out.")
    if len(result.windows) > 1:
        regions = spoof_regions(voting, threshold)
        flagged = sum(w.score < threshold for w in voting)
        if not regions:
            lines.append("No window falls on the spoof side.")
        else:
            shown = ", ".join(f"{format_time(a)}–{format_time(b)}" for a, b in regions[:MAX_REGIONS_LISTED])
            more = f" and {len(regions) - MAX_REGIONS_LISTED} more" if len(regions) > MAX_REGIONS_LISTED else ""
            lines.append(f"Windows on the spoof side: {flagged} of {len(voting)}, at {shown}{more} (see the timeline).")
    return "\n\n".join(lines)


def how_to_read(threshold: float, window_s: float, hop_s: float) -> str:
    """The page's "How to read this" section, with this model's threshold and windows."""
    return f"""
- **Verdict** — *bona fide* means the detector takes the recording for real human speech recorded by a
  microphone; *spoof* means synthetic or manipulated speech (text-to-speech, voice conversion, or real
  speech passed through a vocoder or neural codec). *No speech*: a speech detector (silero-vad) heard no speech, so
  there is nothing to judge; in a recording with speech, only the windows that hold speech vote.
- **Probability bona fide** — the model's calibrated probability; the verdict is *bona fide* at 50 % or more.
  It is calibrated on the model's validation data, so it is only as trustworthy as your audio is similar to it;
  a model fitted with the familiarity check warns when a recording is unlike its training audio.
- **Score** — `logit[bona fide] − logit[spoof]`: **higher = more bona fide**, the ASVspoof convention. The
  verdict flips at {threshold:+.3f} (the dashed line in the timeline).
- **Timeline** — long audio is cut into {window_s:g} s windows every {hop_s:g} s. The
  overall score is their mean, so a short fake passage inside a long real recording can be outvoted: look for
  red dips below the line. Very long recordings are binned for display (a grey band shows each bin's range).
- **Spectrogram** — the audio as the model gets it (16 kHz mono, so nothing above 8 kHz). Silence, music,
  clipping or telephone band-limiting are visible here and are conditions the model may not have been trained on.
- **Examples** — the TTS clips are spoofs (espeak-ng); the bona fide clip is a Czech voice actor from the game
  Fish Fillets NG (GPL-2); the partly fake clip is that actor followed by the TTS.
"""
