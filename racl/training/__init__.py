"""Training a RACL detector with Accelerate: ``python -m racl.training`` or ``accelerate launch train_racl.py``.

``config`` (the training YAML), ``data`` (splits, clips, batches, crops), ``sampler`` (paired,
class-balanced batches), ``augment`` with ``waveforms`` and ``rawboost`` (augmentation), ``model``
(model and optimiser groups), ``validation`` (scores, selection, the best model), ``checkpoints``,
``loop`` (:func:`~racl.training.loop.train`), ``seeds`` (several seeds), ``cli``.
"""
