"""Does the project work on this GPU, and how fast? One command, within eight minutes on an H100.

    python -m benchmarks.gpu_check --write-cache                        # here: .gpu-cache/mnist-v2.npz (11 MB)
    python -m benchmarks.gpu_check --data-file .gpu-cache/mnist-v2.npz  # there: the check, on the GPU

Parts, each timed and each allowed to fail without stopping the others (the plan, per part, on an H100):

1. environment (~5 s): Python, PyTorch, the GPU, GEMM throughput in float32 and bfloat16;
2. the conv step (~3 min): VAE and AVB at K = 1, IWAE, IWAVB and IWAVB + AC at K = 10, batch 128, l = 8, in
   every way the trainer can run it (`TrainConfig.accelerate`), beside the naive K-loop at K = 10, with each
   one's steps/s, fraction of the bfloat16 FLOP bound, peak memory and host syncs;
3. agreement (~30 s): the mean training bound of 20 steps from one seed, every way against plain float32;
4. training (what is left of the budget, at most 3 min): conv IWAVB + AC, K = 10, l = 8, on MNIST, then its
   objective on 64 validation images on the GPU and, with the same weights, on the CPU (~10 s);
5. AIS (~1.5 min): the trained model's AIS throughput (images/s at the paper's 8 chains x 1,000
   distributions, and the time of the 10,000 test images extrapolated from two measured runs on one chunk:
   iwavb/evaluation/ais_timing.py), then its AIS NLL on a few hundred test images (fewer distributions, so
   that it fits; it reads low) with IS on the same images.

On a machine without CUDA it runs a tiny version of every part (the mlp family, a few steps), which CI runs.
It writes JSON and Markdown (--out). It imports only the library's own dependencies (torch, torchvision,
safetensors, numpy, tqdm) and says so in its report.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from iwavb.core.bounds import bound
from iwavb.core.config import Contrast, Family, MethodName, method_title
from iwavb.core.model import eval_mode
from iwavb.data.loading import DataError, data_file_name, export_dataset, load_dataset_file
from iwavb.data.splits import DataSplits, binarize
from iwavb.evaluation.ais import AISConfig, ais_images_per_call
from iwavb.evaluation.ais_timing import time_ais
from iwavb.evaluation.evaluate import EvalSettings, estimate_log_px, evaluation_images
from iwavb.training.config import CUDA_AUTO, TrainConfig
from iwavb.training.device import device_description, resolve_device
from iwavb.training.step import resolve_accelerate
from iwavb.training.trainer import Trainer

from .gpu_report import markdown
from .measure import matmul_flops_per_s
from .train_speed import Row, measure_case

CACHE = Path(".gpu-cache")
FORBIDDEN = ("streamlit", "plotly", "ray", "pandas", "altair", "pythae")  # the app's, never the library's
PAPER_AIS = AISConfig()  # 8 chains x 1,000 distributions, the paper's
TEST_IMAGES = 10_000  # MNIST's test split
Case = tuple[MethodName, int, Contrast]  # a step to time or a model to train: method, K, contrast


@dataclass(frozen=True)
class Plan:
    """What each part does; FULL on a GPU, TINY elsewhere (and in CI)."""

    name: str
    family: Family
    hidden: int
    batch: int
    cases: tuple[Case, ...]  # of the step table
    variants: tuple[str, ...]  # ways of running the step, besides the looped baseline at K > 1
    compiled: Case | None  # the one case also timed with torch.compile (it compiles for ~1 min)
    step_seconds: float
    agreement_steps: int
    train_minutes: float
    train: Case  # the trained model
    latent: int
    ais_chains: int
    ais_timing_steps: tuple[int, int]
    ais_steps: int  # distributions of the NLL estimate
    ais_images: int  # at most
    is_k: int
    reserve_s: float  # kept for AIS when the training part takes what is left


FULL = Plan(
    name="full",
    family="conv",
    hidden=300,
    batch=128,
    cases=(
        ("vae", 1, "none"),
        ("avb", 1, "none"),
        ("iwae", 10, "none"),
        ("iwavb", 10, "none"),
        ("iwavb", 10, "adaptive"),
    ),
    variants=("vectorised", "amp", "graph", "amp+graph"),
    compiled=("iwavb", 10, "adaptive"),
    step_seconds=1.0,
    agreement_steps=20,
    train_minutes=3.0,
    train=("iwavb", 10, "adaptive"),
    latent=8,
    ais_chains=PAPER_AIS.chains,
    ais_timing_steps=(10, 30),
    ais_steps=100,
    ais_images=300,
    is_k=1_000,
    reserve_s=100.0,
)
TINY = Plan(
    name="tiny",
    family="mlp",
    hidden=32,
    batch=16,
    cases=(("vae", 1, "none"), ("avb", 1, "none"), ("iwae", 3, "none"), ("iwavb", 3, "none"), ("iwavb", 3, "adaptive")),
    variants=("vectorised",),
    compiled=None,
    step_seconds=0.05,
    agreement_steps=3,
    train_minutes=0.1,
    train=("iwavb", 3, "adaptive"),
    latent=8,
    ais_chains=2,
    ais_timing_steps=(2, 4),
    ais_steps=4,
    ais_images=8,
    is_k=20,
    reserve_s=0.0,
)


def config(plan: Plan, case: Case, device: torch.device, **settings: Any) -> TrainConfig:
    method, k, contrast = case
    return TrainConfig.for_method(
        method,
        k=k,
        dataset="mnist",
        family=plan.family,
        hidden=plan.hidden,
        latent_dim=plan.latent,
        batch_size=plan.batch,
        contrast=contrast,
        device=str(device),
        **settings,
    )


# -- the parts ------------------------------------------------------------------------------------------
def environment(device: torch.device) -> dict[str, Any]:
    dtypes = (torch.float32, torch.bfloat16) if device.type == "cuda" else (torch.float32,)
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": device_description(device),
        "gemm_flops_per_s": {str(d).removeprefix("torch."): matmul_flops_per_s(device, d) for d in dtypes},
        "cuda_auto": dict(CUDA_AUTO),
    }


def _case(trainer_config: TrainConfig, data: DataSplits, variant: str, seconds: float) -> dict[str, Any]:
    device = torch.device(trainer_config.device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    row: Row = measure_case(trainer_config, data, variant, seconds)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return {**dataclasses.asdict(row), "peak_run_bytes": peak}


def step_table(plan: Plan, data: DataSplits, device: torch.device, gemm: dict[str, float]) -> dict[str, Any]:
    """Every case in every way, the looped baseline where K > 1, torch.compile for one case."""
    rows = []
    for case in plan.cases:
        cfg = config(plan, case, device)
        ways = [*plan.variants, *(["looped"] if case[1] > 1 else []), *(["compile"] if case == plan.compiled else [])]
        rows += [_case(cfg, data, way, plan.step_seconds) for way in ways]
    plain = {(r["method"], r["k"], r["contrast"]): r["flops_per_step"] for r in rows if r["variant"] == "vectorised"}
    bf16 = gemm.get("bfloat16", gemm["float32"])
    for r in rows:
        flops = plain.get((r["method"], r["k"], r["contrast"]))
        r["flops_per_step"] = r["flops_per_step"] or flops
        rate = r["steps_per_s"]
        r["bf16_bound_share"] = rate * flops / bf16 if rate and flops else None
    return {"rows": rows, "summary": _summary(rows, device)}


def _summary(rows: list[dict[str, Any]], device: torch.device) -> list[dict[str, Any]]:
    """Per case: the fastest way, its share of the bfloat16 bound, its speed over the looped K, and whether
    it is the way `auto` picks on CUDA."""
    out = []
    for key in dict.fromkeys((r["method"], r["k"], r["contrast"]) for r in rows):
        mine = [r for r in rows if (r["method"], r["k"], r["contrast"]) == key and r["steps_per_s"]]
        ways = [r for r in mine if r["variant"] != "looped"]
        if not ways:
            continue
        best = max(ways, key=lambda r: r["steps_per_s"])
        looped = next((r["steps_per_s"] for r in mine if r["variant"] == "looped"), None)
        auto = resolve_accelerate("auto", device, best["family"])
        out.append(
            {
                "case": f"{method_title(key[0], key[2])} K={key[1]}",
                "fastest": best["variant"],
                "steps_per_s": best["steps_per_s"],
                "bf16_bound_share": best["bf16_bound_share"],
                "x_looped": best["steps_per_s"] / looped if looped else None,
                "auto": auto,
                "auto_is_fastest": auto == best["variant"] or (auto == "none" and best["variant"] == "vectorised"),
            }
        )
    return out


def agreement(plan: Plan, data: DataSplits, device: torch.device, ways: tuple[str, ...]) -> list[dict[str, Any]]:
    """The training bound of the first steps from one seed (same weights, batches and draws), each way beside
    plain float32: a wrong step (a stale graph input, a cast in the wrong place) shows as a gap."""
    means: dict[str, float] = {}
    for way in ways:
        trainer = Trainer(config(plan, plan.train, device, accelerate=way), data)
        bounds = [trainer.train_step()[0].clone() for _ in range(plan.agreement_steps)]
        means[way] = torch.stack(bounds).mean().item()
    return [{"way": w, "mean_bound": m, "minus_plain": m - means["none"]} for w, m in means.items()]


def training(plan: Plan, data: DataSplits, device: torch.device, seconds: float) -> tuple[Trainer, dict[str, Any]]:
    """Train the plan's model for `seconds` (the way `auto` picks), with a progress bar on stderr."""
    from tqdm import tqdm

    cfg = config(plan, plan.train, device, steps=10**7, log_every=50, eval_every=1_000)
    trainer = Trainer(cfg, data)
    deadline = time.monotonic() + seconds
    with tqdm(desc="training", unit="step", file=sys.stderr) as bar:
        for record in trainer.run():
            bar.update(record.step - bar.n)
            bar.set_postfix(bound=f"{record.train_bound:.1f}")
            if time.monotonic() > deadline:
                trainer.stop()
    trainer.model.eval()
    valid = trainer.validation_bound()
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return trainer, {
        "run": trainer.config.title,
        "accelerate": trainer.accelerate,
        "steps": trainer.step,
        "seconds": trainer.elapsed_s,
        "steps_per_s": trainer.step / max(trainer.elapsed_s, 1e-9),
        "validation_objective": valid,
        "peak_bytes": peak,
    }


def devices(trainer: Trainer, data: DataSplits, images: int = 64) -> dict[str, Any]:
    """The trained model's bound (its own K) on the same validation images on this device and on the CPU,
    the same weights: they differ only by the Monte Carlo noise of their own draws (and float rounding)."""
    x = binarize(data.valid.images[:images].cpu(), torch.Generator().manual_seed(0))
    bounds = {}
    for where, model in (("device", trainer.model), ("cpu", copy.deepcopy(trainer.model).cpu())):
        with eval_mode(model), torch.no_grad():
            bounds[where] = bound(model, x.to(next(model.parameters()).device), trainer.config.k).double().cpu()
    paired = bounds["device"] - bounds["cpu"]  # per image: the same image, weights and K, other draws
    difference, se = paired.mean().item(), paired.std().item() / math.sqrt(images)
    return {
        "images": images,
        "device": bounds["device"].mean().item(),
        "cpu": bounds["cpu"].mean().item(),
        "difference": difference,
        "se": se,
        "agree": abs(difference) < 4 * se + 1e-3,
    }


def ais_part(plan: Plan, trainer: Trainer, data: DataSplits, seconds: float) -> dict[str, Any]:
    """AIS throughput and time for the whole test split (extrapolated), then NLL by AIS and IS on a subset."""
    model, device = trainer.model.eval(), trainer.device
    chains = AISConfig(chains=plan.ais_chains)
    chunk = ais_images_per_call(model, device, chains)
    x = evaluation_images(data, chunk, seed=0)
    timing = time_ais(model, x, chains, plan.ais_timing_steps)
    affordable = int(0.6 * seconds * timing.images_per_s(plan.ais_steps))
    n = max(4, min(plan.ais_images, affordable))
    settings = EvalSettings(estimator="ais", n_test=n, chains=plan.ais_chains, steps=plan.ais_steps)
    test = evaluation_images(data, n, settings.seed)
    began = time.perf_counter()
    ais_px, diagnostics = estimate_log_px(model, test, settings)
    ais_s = time.perf_counter() - began
    is_px, _ = estimate_log_px(model, test, dataclasses.replace(settings, estimator="is", k=plan.is_k))
    return {
        "chunk_images": timing.chunk_images,
        "timing": dataclasses.asdict(timing),
        "images_per_s_paper": timing.images_per_s(PAPER_AIS.steps),
        "test_split_seconds_paper": timing.seconds_for(TEST_IMAGES, PAPER_AIS.steps),
        "nll": {
            "images": n,
            "ais": _nll(ais_px),
            "ais_steps": plan.ais_steps,
            "ais_seconds": ais_s,
            "ais_acceptance": diagnostics.get("ais_acceptance"),
            "is": _nll(is_px),
            "is_k": plan.is_k,
        },
    }


def _nll(log_px: torch.Tensor) -> dict[str, float]:
    return {"nll": -log_px.mean().item(), "se": log_px.std().item() / math.sqrt(log_px.numel())}


# -- running it -----------------------------------------------------------------------------------------
def timed(report: dict[str, Any], name: str, part: Callable[[], Any]) -> Any:
    """Run a part, record its result (or its error) and its seconds in the report."""
    began = time.perf_counter()
    try:
        result = part()
        report[name] = result
        return result
    except Exception as err:  # a part that fails is reported; the others still run
        report[name] = {"error": f"{type(err).__name__}: {err}"}
        return None
    finally:
        report.setdefault("seconds", {})[name] = round(time.perf_counter() - began, 1)


def check(plan: Plan, data: DataSplits, device: torch.device, budget_s: float) -> dict[str, Any]:
    began = time.perf_counter()
    report: dict[str, Any] = {"plan": dataclasses.asdict(plan), "budget_s": budget_s}
    env = timed(report, "environment", lambda: environment(device))
    gemm = env["gemm_flops_per_s"] if env else {"float32": 1.0}
    timed(report, "steps", lambda: step_table(plan, data, device, gemm))
    ways = ("none", "amp", "graph", "amp+graph") if device.type == "cuda" else ("none", "amp")
    timed(report, "agreement", lambda: agreement(plan, data, device, ways))
    left = budget_s - (time.perf_counter() - began) - plan.reserve_s
    train_s = max(15.0 * plan.train_minutes, min(60.0 * plan.train_minutes, left))  # at least a quarter
    trained = timed(report, "training", lambda: training(plan, data, device, train_s))
    if trained is not None:
        trainer, summary = trained
        report["training"] = summary
        timed(report, "devices", lambda: devices(trainer, data))
        left = budget_s - (time.perf_counter() - began)
        timed(report, "ais", lambda: ais_part(plan, trainer, data, max(10.0, left)))
    report["total_seconds"] = round(time.perf_counter() - began, 1)
    report["forbidden_imports"] = sorted({m.split(".")[0] for m in sys.modules} & set(FORBIDDEN))
    return report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--write-cache", action="store_true", help="write the data set's file into --folder and stop")
    p.add_argument("--data", default="mnist", help="data set to write with --write-cache (default: mnist)")
    p.add_argument("--data-root", type=Path, default=None, help="where --write-cache reads it (IWAVB_DATA_ROOT)")
    p.add_argument("--folder", type=Path, default=CACHE, help=f"where --write-cache writes (default: {CACHE})")
    p.add_argument("--data-file", type=Path, default=CACHE / data_file_name("mnist"), help="the data set's file")
    p.add_argument("--out", type=Path, default=CACHE, help=f"folder of gpu-check.json and .md (default: {CACHE})")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    p.add_argument("--tiny", action="store_true", help="the tiny version, also on a GPU (a smoke test)")
    p.add_argument("--budget-minutes", type=float, default=8.0, help="the whole check's time (default: 8)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.write_cache:
            path = export_dataset(args.data, args.folder, args.data_root)
            print(
                f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB); carry it and run: "
                f"python -m benchmarks.gpu_check --data-file {path}"
            )
            return 0
        device = resolve_device(args.device)
        data = load_dataset_file(args.data_file, device)
    except (DataError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    plan = FULL if device.type == "cuda" and not args.tiny else TINY
    print(
        f"gpu_check ({plan.name}) on {device_description(device)}; budget {args.budget_minutes:g} min", file=sys.stderr
    )
    report = check(plan, data, device, 60 * args.budget_minutes)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu-check.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    text = markdown(report)
    (args.out / "gpu-check.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
