"""A density known only through samples, estimated from the distance to the k-th nearest neighbour.

For n reference samples of a density q in d dimensions and a query point z whose k-th nearest reference
lies at distance r, the probability mass u of the ball of radius r is Beta(k, n - k + 1) distributed, so
E[log u] = psi(k) - psi(n + 1); with u ~ q(z) c_d r^d (c_d the volume of the unit ball):

    log q(z) ~ psi(k) - psi(n + 1) - log c_d - d log r                    (Kozachenko & Leonenko, 1987)

(Loftsgaarden & Quesenberry's k / (n c_d r^d) with the bias of its logarithm removed.) A query that is itself
one of the samples leaves itself out (n - 1 references). The estimate's own scatter per point is about
sqrt(psi'(k)) (0.23 nats at k = 20); its bias shrinks as k / n does. In two dimensions it is accurate
with a few thousand samples, which is what q's samples of an l = 2 model cost.
"""

from __future__ import annotations

import math

import torch

DEFAULT_NEIGHBOURS = 20


def knn_noise(k: int = DEFAULT_NEIGHBOURS) -> float:
    """Standard deviation of one kNN log-density estimate around its mean: sqrt(psi'(k)) nats."""
    return math.sqrt(float(torch.special.polygamma(1, torch.tensor(float(k), dtype=torch.float64))))


def knn_log_density(
    samples: torch.Tensor, queries: torch.Tensor | None = None, k: int = DEFAULT_NEIGHBOURS
) -> torch.Tensor:
    """log q at `queries` (M, d) from `samples` (N, d) of q: float64 (M,), on the CPU. Without queries: at each
    sample, leaving it out. Neighbours come from scikit-learn's k-d tree, in float64."""
    from sklearn.neighbors import KDTree  # imported here: scikit-learn takes seconds to import

    leave_one_out = queries is None
    reference = samples.detach().cpu().double().numpy()
    points = reference if queries is None else queries.detach().cpu().double().numpy()
    n, d = reference.shape
    n_reference = n - 1 if leave_one_out else n
    if not 1 <= k <= n_reference:
        raise ValueError(f"k = {k} neighbours need at least {k} reference samples, got {n_reference}")
    distances, _ = KDTree(reference).query(points, k=k + leave_one_out)  # (M, k'): a sample is its own nearest
    r = torch.from_numpy(distances[:, -1]).clamp_min(torch.finfo(torch.float64).tiny)
    log_unit_ball = 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1)  # log c_d
    digamma = torch.special.digamma(torch.tensor([float(k), float(n_reference + 1)], dtype=torch.float64))
    return digamma[0] - digamma[1] - log_unit_ball - d * torch.log(r)
