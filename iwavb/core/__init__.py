"""Layer 1, the maths: the networks, the latent-variable model and the one bound (2.9)/(3.1) with the
discriminator's objective (2.14). Imports nothing of the project above it."""
