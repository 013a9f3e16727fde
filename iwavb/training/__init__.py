"""Layer 3, training: the run's settings (`config`), the trainer, its checkpoints, the runs folder and the
device. Importing the package imports no torch."""
