"""IWAVB Lab: VAE, IWAE, AVB and IWAVB as one bound, with training, checkpoints, honest evaluation and an app.

The subpackages are layers, lowest first; a module imports only from its own layer and those below
(tests/test_layers.py checks it):

    settings, errors, files, schema   every IWAVB_* setting; errors; atomic writes; typed JSON
    core          the networks, the model, the one bound (2.9)/(3.1) and the discriminator loss (2.14)
    data          data sets, the paper's splits, cache, dynamic binarisation
    training      configs, the trainer, checkpoints, the runs folder, the device
    evaluation    log p(x) by importance sampling, AIS and the exact grid; `evaluate`
    artefacts     the shipped checkpoints and their manifest, the catalogue, reproduce, results
    sweep         a grid of trials from a TOML spec (the paper's Table 1) on Ray; restartable; its table
    app           what the Streamlit app runs and shows, without Streamlit
    cli           `iwavb` / `python -m iwavb`

Importing the package is cheap: nothing here imports torch.
"""

__version__ = "0.2.0"
