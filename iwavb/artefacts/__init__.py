"""Layer 5, artefacts: the shipped checkpoints and their manifest (`pretrained`), the catalogue of
checkpoints the app lists (`catalog`), `reproduce` and the results tables (`results`)."""
