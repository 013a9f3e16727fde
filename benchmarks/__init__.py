"""Benchmarks of training speed: `python -m benchmarks.train_speed --help` (README.md in this folder)."""
