"""The dataset schema of DESIGN.md section 4, in one place.

Corpus readers yield :class:`ClipRecord` (a path, not decoded audio); the build decodes, reconstructs
and writes rows with :data:`FEATURES`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import datasets

SAMPLING_RATE = 16_000
LABEL_NAMES = ["bonafide", "spoof"]
BONAFIDE, SPOOF = 0, 1
NO_ATTACK = "-"
NO_RECONSTRUCTION = "none"

FEATURES = datasets.Features(
    {
        "audio": datasets.Audio(sampling_rate=SAMPLING_RATE),
        "label": datasets.ClassLabel(names=LABEL_NAMES),
        "utt_id": datasets.Value("string"),
        "source_id": datasets.Value("string"),
        "is_reconstructed": datasets.Value("bool"),
        "reconstruction": datasets.Value("string"),
        "attack": datasets.Value("string"),
        "speaker": datasets.Value("string"),
        "corpus": datasets.Value("string"),
        "duration": datasets.Value("float32"),
    }
)


def label_id(label: str | int) -> int:
    """Accept 0/1, 'bonafide'/'spoof' and the spellings corpora use ('bona-fide', 'genuine', 'fake', ...)."""
    if isinstance(label, (int,)) and label in (BONAFIDE, SPOOF):
        return int(label)
    text = str(label).strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    if text in {"bonafide", "genuine", "real", "0", "human", "original"}:
        return BONAFIDE
    if text in {"spoof", "fake", "1", "deepfake", "synthetic", "generated"}:
        return SPOOF
    raise ValueError(f"unknown label {label!r}: expected bonafide/spoof (or 0/1)")


@dataclass
class ClipRecord:
    """One clip as a corpus reader sees it: where the audio is and what it is.

    ``extra`` keeps corpus-specific metadata (ASVspoof 2021 codec/vocoder, the corpus's own split,
    transcript) without widening the schema.
    """

    path: str
    utt_id: str
    label: int
    speaker: str
    corpus: str
    attack: str = NO_ATTACK
    source_id: str | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.label = label_id(self.label)
        if self.source_id is None:
            self.source_id = self.utt_id
        if self.label == BONAFIDE and self.attack in ("", None):
            self.attack = NO_ATTACK

    def to_dict(self) -> dict:
        return asdict(self)
