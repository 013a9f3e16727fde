"""Layer 4, evaluation: honest estimates of log p(x) that never use T: importance sampling (`importance`),
AIS with HMC (`ais`), the exact grid for l = 2 (`grid`), and `evaluate`, which runs them on a checkpoint."""
