"""Layer 6, sweeps: a grid of training runs from a TOML spec, run on Ray, restartable, as a Table-1 table.

    spec      the spec file: grid, budget, evaluation, resources; checked whole before anything starts
    trial     one trial, without Ray: train (or resume), save, evaluate with the project's own code
    table     the results in Table 1's shape (mean ± s.e. over seeds beside the paper's), Markdown and JSON
    board     the trials' progress, as the live view shows it (a Ray actor in a run; torch-free)
    engine    the run on Ray: locally by default, on a cluster with an address; retries, the live view

Only `engine` imports Ray, and only when a sweep runs: the rest of the library works without it.
"""
