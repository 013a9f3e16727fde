"""Layer 2, the data: the paper's data sets and AVB's toy problem (`names`, `toy`), their splits and
binarisation (`splits`), and loading with a cache (`loading`). Importing the package imports no torch."""
