"""Evaluation of a RACL detector on a dataset split or a corpus: ``racl-eval`` / ``python -m racl.evaluation``.

``table`` (the score table), ``batch_scoring`` (scoring many clips, with embeddings),
``dataset`` / ``corpus`` (what is scored), ``summary`` (EER pooled, per attack and paradigm, seen
and unseen systems, min t-DCF), ``report`` (scores, results, markdown) with ``plots``,
``calibration`` (the p(bonafide) fit), ``model_folder`` (calibration and card written into a
model folder), ``cli``.
"""
