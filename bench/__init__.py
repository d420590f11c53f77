"""Benchmarks: the project's speed claims, measured side by side against the emulator.

Run ``python -m bench.run`` (see :mod:`bench.run` and ``bench/README.md``). Every figure is a
comparison made in one run: ours against a baseline, medians over interleaved repetitions.
"""
