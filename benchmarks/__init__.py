"""Benchmarks, run from the repository root as modules: ``python -m benchmarks.bench_inference`` (and
``bench_train``, ``bench_build``). They import the installed packages, as a user's code would."""
