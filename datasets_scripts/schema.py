"""The dataset schema (docs/design.md#dataset-schema), in one place.

Corpus readers yield :class:`ClipRecord` (a path, not decoded audio); the build decodes, reconstructs
and writes rows with :data:`FEATURES`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import datasets

from racl.labels import BONAFIDE, LABEL_NAMES, NO_ATTACK, NO_RECONSTRUCTION, SAMPLING_RATE, SPOOF, label_id

FEATURES = datasets.Features(
    {
        "audio": datasets.Audio(sampling_rate=SAMPLING_RATE),
        "label": datasets.ClassLabel(names=list(LABEL_NAMES)),
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


# The label and rate constants are defined once (racl.labels); re-exported for the readers and the build.
__all__ = ["FEATURES", "ClipRecord", "BONAFIDE", "LABEL_NAMES", "NO_ATTACK", "NO_RECONSTRUCTION", "SAMPLING_RATE", "SPOOF",
           "label_id"]
