"""Equal error rate of a spoofing countermeasure, as a local ``evaluate`` metric.

Load it offline from the repository root with ``evaluate.load("metrics/eer")`` (or the absolute
path of this folder). The computation is ``racl.metrics.compute_eer``; see that module for the
polarity and the exact definition.
"""

import datasets
import evaluate

from racl.metrics import compute_eer

_CITATION = """\
@inproceedings{todisco2019asvspoof,
  title={{ASVspoof} 2019: Future Horizons in Spoofed and Fake Audio Detection},
  author={Todisco, Massimiliano and Wang, Xin and Vestman, Ville and others},
  booktitle={Proc. Interspeech},
  year={2019}
}
"""

_DESCRIPTION = """\
Equal error rate (EER) of a bona fide / spoof detector: the operating point where the fraction of
spoofs accepted equals the fraction of bona fide clips rejected. Scores follow the ASVspoof
convention: higher = more bona fide (score = logit[bonafide] - logit[spoof]); references are
0 = bonafide, 1 = spoof. The EER is a fraction in [0, 1], linearly interpolated between the two
ROC points that bracket the crossing, exact for tied scores.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `float`): detector scores, higher = more bona fide.
    references (`list` of `int`): 0 = bonafide, 1 = spoof. Both classes must be present.
Returns:
    eer (`float`): equal error rate in [0, 1] (0 perfect, 0.5 chance, 1 inverted).
    threshold (`float`): the score nearest the crossing; a clip is bona fide if score >= threshold.
Examples:
    >>> eer = evaluate.load("metrics/eer")
    >>> eer.compute(predictions=[2.0, 1.5, -1.0, -3.0], references=[0, 0, 1, 1])
    {'eer': 0.0, 'threshold': 1.5}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Eer(evaluate.Metric):
    """EER with racl's polarity (higher score = more bona fide; label 0 = bonafide)."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float32"), "references": datasets.Value("int32")}
            ),
            reference_urls=["https://www.asvspoof.org/"],
        )

    def _compute(self, predictions, references):
        eer, threshold = compute_eer(predictions, references)
        return {"eer": eer, "threshold": threshold}
