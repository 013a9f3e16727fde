"""Regenerate a shipped checkpoint from its manifest entry, and the results table beside the paper's.

    python -m iwavb reproduce toy-iwavb-k10      # train, save pretrained/toy-iwavb-k10.safetensors, evaluate
    python -m iwavb reproduce --all --skip-existing
    python -m iwavb results                      # rewrite RESULTS.md from the manifest
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from .console import train_with_progress
from .data import load_dataset
from .device import device_description
from .evaluate import eval_path
from .pretrained import ManifestEntry, load_manifest, save_manifest
from .trainer import Trainer

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


def train_entry(entry: ManifestEntry, device: str = "auto") -> dict[str, Any]:
    """Train an entry's configuration from scratch and write its float16 checkpoint; return the run's facts."""
    config = replace(entry.config, device=device)
    trainer = Trainer(config, data=load_dataset(config.dataset))
    print(f"{entry.name}: {config.method.upper()} on {config.dataset}, K={config.k}, l={config.latent_dim}, "
          f"{config.steps} steps on {device_description(trainer.device)}")
    status = train_with_progress(trainer)
    if status != 0:
        raise RuntimeError(f"{entry.name}: training did not finish (status {status}); nothing was written")
    trainer.save(entry.file, extra={"pretrained": entry.name}, shipped=True)
    eval_path(entry.file).unlink(missing_ok=True)  # its estimates were of the weights just replaced
    return {
        "steps": trainer.step,
        "train_seconds": round(trainer.elapsed_s, 1),
        "hardware": device_description(trainer.device),
        "trained_on": time.strftime("%Y-%m-%d"),
    }


def evaluate_entry(entry: ManifestEntry, device: str = "auto", reuse: bool = False) -> list[dict[str, Any]]:
    """Run each of the entry's test-NLL estimates on its checkpoint (results also land in its .eval.json).

    With `reuse`, an estimate already saved beside the checkpoint with the same settings is taken as is."""
    import dataclasses

    from .console import evaluate_with_progress
    from .evaluate import EvalSettings, read_eval_results, same_estimate

    saved = read_eval_results(entry.file) if reuse else []
    data = None  # loaded once, for the first estimate that has to run
    summaries = []
    for values in entry.evaluations:
        settings = EvalSettings(**{**values, "device": device})
        result = next((r for r in saved if same_estimate(r.settings, dataclasses.asdict(settings))
                       and r.checkpoint_step == entry.config.steps), None)
        if result is None:
            if data is None:
                data = load_dataset(entry.config.dataset)
            result = evaluate_with_progress(entry.file, settings, data, desc=f"{entry.name}: {settings.estimator}")
        print(f"  {result.summary()}")
        summaries.append({"estimator": result.estimator, "nll": round(result.nll, 3),
                          "stderr": None if result.nll_se is None else round(result.nll_se, 3),
                          "n_images": result.n_images, "seconds_per_1000": round(result.seconds_per_1000, 1),
                          "device": result.device})
    return summaries


def reproduce(names: list[str], device: str = "auto", skip_existing: bool = False, skip_eval: bool = False) -> None:
    """Train (unless the file exists and `skip_existing`) and evaluate entries, updating the manifest."""
    known = {e.name: e for e in load_manifest()}
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"not in the manifest: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for name in names:
        entry = known[name]
        result = dict(entry.result)
        kept = skip_existing and entry.file.exists()
        if not kept:
            result = train_entry(entry, device)
        if not skip_eval:
            result["nll"] = evaluate_entry(entry, device, reuse=kept)
        # Re-read before writing: another reproduce process may have updated other entries meanwhile.
        save_manifest([replace(e, result=result) if e.name == name else e for e in load_manifest()])


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def results_table(entries: list[ManifestEntry]) -> str:
    """Markdown: one row per shipped checkpoint, our test NLL with its estimator beside the paper's."""
    lines = [
        "| checkpoint | data | method | l | K | family | steps (% of paper's 150k) | our test NLL ± s.e. "
        "| cross-checks | paper's NLL (IWAVB, conv) | training time, hardware |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        c, r = e.config, e.result
        estimates = r.get("nll") or []
        nll = estimates[0] if estimates else {}
        digits = 3 if c.dataset == "toy" else 2  # the toy NLLs differ by hundredths of a nat
        others = "; ".join(f"{o['estimator']} {_fmt(o['nll'], digits)} ± {_fmt(o['stderr'], digits)} "
                           f"({o['n_images']} images)"
                           for o in estimates[1:]) or "–"
        paper = PAPER_TABLE_1.get((c.dataset, c.latent_dim), {}).get(c.k) if c.q == "implicit" else None
        steps = r.get("steps")
        share = f"{steps} ({100 * steps / PAPER_STEPS:.1f}%)" if steps and c.dataset != "toy" else str(steps or "–")
        estimate = (f"{_fmt(nll.get('nll'), digits)} ± {_fmt(nll.get('stderr'), digits)} "
                    f"({nll['estimator']}, {nll['n_images']} images)"
                    if nll else "not evaluated")
        lines.append(
            f"| {e.name} | {c.dataset} | {c.method.upper()} | {c.latent_dim} | {c.k} | {c.family} | {share} "
            f"| {estimate} | {others} | {_fmt(paper)} | {_fmt(r.get('train_seconds'), 0)} s, {r.get('hardware', '–')} |"
        )
    return "\n".join(lines) + "\n"


def paired_differences(entries: list[ManifestEntry]) -> str:
    """Markdown: each model's headline NLL minus the VAE's with the same data set and l, on the same images.

    Every method is scored on the same seeded test images (iwavb.evaluate), so the difference per image has
    a much smaller standard error than either NLL: this is the table that says which method wins. The toy
    test set is draws of 4 points whose log p(x) is exact: there the count is of points, with no s.e."""
    import math

    import torch

    from .evaluate import EvalError, EvalResult, read_eval_results, same_estimate

    def headline(entry: ManifestEntry) -> EvalResult | None:
        wanted = entry.evaluations[0] if entry.evaluations else {}
        try:
            saved = read_eval_results(entry.file) if entry.file.exists() else []
        except EvalError:
            return None  # an unreadable file has no row; `reproduce NAME` writes it again
        return next((r for r in saved if r.checkpoint_step == entry.result.get("steps")
                     and all(r.settings.get(k) == v for k, v in wanted.items())), None)

    lines = ["| data | l | estimator | images | method | NLL − VAE's NLL ± s.e. | better than the VAE on |",
             "|---|---|---|---|---|---|---|"]
    for vae in (e for e in entries if e.config.method == "vae"):
        reference = headline(vae)
        if reference is None:
            continue
        for e in entries:
            same_setting = (e.config.dataset, e.config.latent_dim) == (vae.config.dataset, vae.config.latent_dim)
            result = headline(e) if same_setting and e is not vae else None
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
            lines.append(f"| {e.config.dataset} | {e.config.latent_dim} | {result.estimator} | {d.numel()} "
                         f"| {e.config.method.upper()} (K = {e.config.k}) | {change} | {better} |")
    return "\n".join(lines) + "\n"


def write_results(entries: list[ManifestEntry], path: Path) -> Path:
    header = (
        "# Results: shipped checkpoints beside the paper's Table 1\n\n"
        "Generated by `python -m iwavb results` from `pretrained/manifest.json`; every row is regenerated by\n"
        "`python -m iwavb reproduce NAME`. The paper trains AVB's conv networks for 150,000 steps on a GPU;\n"
        "the shipped checkpoints are small mlp models trained for a small fraction of that on a 2-core CPU,\n"
        "so their NLL is not expected to match the paper's. Lower NLL is better. The cross-checks are other\n"
        "estimators run on the same test images as the headline estimate (same seed and count); IS is an\n"
        "upper bound on the NLL in expectation, so its excess over AIS or the exact grid is its looseness.\n\n"
    )
    paired = (
        "\n## Which method wins: paired differences\n\n"
        "All models of one data set are scored on the same seeded test images, so their NLLs can be compared\n"
        "image by image. A negative difference means a better model than the VAE with the same data and l; its\n"
        "standard error is over images of the difference, far smaller than that of either NLL above.\n\n"
    )
    path.write_text(header + results_table(entries) + paired + paired_differences(entries))
    return path
