"""IWAVB Lab: VAE, IWAE, AVB and IWAVB as one bound (REFERENCE.md), with training, checkpoints and evaluation.

Importing the package is cheap; the submodules hold the work:
`config` (settings), `data`, `nets` and `model`, `bounds` (the one formula), `trainer`, `checkpoint`.
"""

__version__ = "0.1.0"
