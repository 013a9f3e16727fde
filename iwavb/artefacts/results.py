"""The results tables: the shipped checkpoints beside the paper's Table 1, and paired method differences.

python -m iwavb results                      # rewrite RESULTS.md from the manifest
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch

from ..evaluation.evaluate import EvalError, EvalResult, read_eval_results, same_estimate
from ..files import atomic_write_bytes
from .pretrained import Estimate, ManifestEntry

# Table 1 of the paper: test NLL (nats) of IWAVB, conv networks, 150k steps, AIS 8 chains x 1,000 steps.
PAPER_TABLE_1 = {
    ("mnist", 8): {1: 90.23, 5: 90.16, 10: 90.19},
    ("mnist", 32): {1: 80.74, 5: 80.49, 10: 79.77},
    ("fashion", 8): {1: 231.25, 5: 230.34, 10: 229.43},
    ("fashion", 32): {1: 226.96, 5: 227.16, 10: 225.14},
    ("omniglot", 8): {1: 156.62, 5: 142.99, 10: 152.70},
    ("omniglot", 32): {1: 91.54, 5: 91.25, 10: 91.43},
}
PAPER_STEPS = 150_000


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _estimate_text(e: Estimate, digits: int) -> str:
    return f"{e.nll:.{digits}f} ± {_fmt(e.stderr, digits)}"


def results_table(entries: list[ManifestEntry]) -> str:
    """Markdown: one row per shipped checkpoint, our test NLL with its estimator beside the paper's."""
    lines = [
        "| checkpoint | data | method | l | K | family | steps (% of paper's 150k) | our test NLL ± s.e. "
        "| cross-checks | paper's NLL (IWAVB, conv) | training time, hardware |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        c, r = e.config, e.result
        digits = 3 if c.dataset == "toy" else 2  # the toy NLLs differ by hundredths of a nat
        others = "; ".join(f"{o.estimator} {_estimate_text(o, digits)} ({o.n_images} images)" for o in r.nll[1:]) or "–"
        paper = PAPER_TABLE_1.get((c.dataset, c.latent_dim), {}).get(c.k) if c.q == "implicit" else None
        share = (
            f"{r.steps} ({100 * r.steps / PAPER_STEPS:.1f}%)" if r.steps and c.dataset != "toy" else str(r.steps or "–")
        )
        headline = r.nll[0] if r.nll else None
        estimate = (
            f"{_estimate_text(headline, digits)} ({headline.estimator}, {headline.n_images} images)"
            if headline
            else "not evaluated"
        )
        lines.append(
            f"| {e.name} | {c.dataset} | {c.title} | {c.latent_dim} | {c.k} | {c.family} | {share} "
            f"| {estimate} | {others} | {_fmt(paper)} | {_fmt(r.train_seconds, 0)} s, {r.hardware or '–'} |"
        )
    return "\n".join(lines) + "\n"


def _headline(entry: ManifestEntry) -> EvalResult | None:
    """The saved result of the entry's headline estimate at its recorded step, if its evaluation file has it."""
    if not entry.evaluations:
        return None
    wanted = dataclasses.asdict(entry.evaluations[0])
    try:
        saved = read_eval_results(entry.file) if entry.file.exists() else []
    except EvalError:
        return None  # an unreadable file has no row; `reproduce NAME` writes it again
    return next(
        (r for r in saved if r.checkpoint_step == entry.result.steps and same_estimate(r.settings, wanted)), None
    )


def paired_differences(entries: list[ManifestEntry]) -> str:
    """Markdown: each model's headline NLL minus the VAE's with the same data set and l, on the same images.

    Every method is scored on the same seeded test images (iwavb.evaluation.evaluate), so the difference per
    image has a much smaller standard error than either NLL: this is the table that says which method wins.
    The toy test set is draws of 4 points whose log p(x) is exact: there the count is of points, with no s.e."""
    lines = [
        "| data | l | estimator | images | method | NLL − VAE's NLL ± s.e. | better than the VAE on |",
        "|---|---|---|---|---|---|---|",
    ]
    for vae in (e for e in entries if e.config.method == "vae"):
        reference = _headline(vae)
        if reference is None:
            continue
        for e in entries:
            same_setting = (e.config.dataset, e.config.latent_dim) == (vae.config.dataset, vae.config.latent_dim)
            result = _headline(e) if same_setting and e is not vae else None
            if result is None or not same_estimate(result.settings, reference.settings):
                continue
            ours, theirs = (torch.tensor(r.log_px, dtype=torch.float64) for r in (result, reference))
            d = theirs - ours  # NLL difference per image
            if e.config.dataset == "toy":
                points = {(round(a, 6), round(b, 6)) for a, b in zip(theirs.tolist(), ours.tolist())}
                change = f"{d.mean().item():+.4f} (exact)"
                better = f"{sum(b > a for a, b in points)} of {len(points)} points"
            else:
                change = f"{d.mean().item():+.2f} ± {d.std().item() / math.sqrt(d.numel()):.2f}"
                better = f"{int((d < 0).sum())} of {d.numel()} images"
            lines.append(
                f"| {e.config.dataset} | {e.config.latent_dim} | {result.estimator} | {d.numel()} "
                f"| {e.config.title} (K = {e.config.k}) | {change} | {better} |"
            )
    return "\n".join(lines) + "\n"


def write_results(entries: list[ManifestEntry], path: Path) -> Path:
    header = (
        "# Results: shipped checkpoints beside the paper's Table 1\n\n"
        "Generated by `python -m iwavb results` from `pretrained/manifest.json`; every row is regenerated by\n"
        "`python -m iwavb reproduce NAME`. The paper trains AVB's conv networks for 150,000 steps on a GPU;\n"
        "the shipped checkpoints are small mlp models trained for a small fraction of that on a 2-core CPU,\n"
        "so their NLL is not expected to match the paper's (nor do they use the paper's adaptive contrast: a\n"
        "method trained with it is named with '+ AC'). Lower NLL is better. The cross-checks are other\n"
        "estimators run on the same test images as the headline estimate (same seed and count); IS is an\n"
        "upper bound on the NLL in expectation, so its excess over AIS or the exact grid is its looseness.\n\n"
    )
    paired = (
        "\n## Which method wins: paired differences\n\n"
        "All models of one data set are scored on the same seeded test images, so their NLLs can be compared\n"
        "image by image. A negative difference means a better model than the VAE with the same data and l; its\n"
        "standard error is over images of the difference, far smaller than that of either NLL above.\n\n"
    )
    atomic_write_bytes(path, (header + results_table(entries) + paired + paired_differences(entries)).encode())
    return path
