"""Training speed of VAE, IWAE, AVB and IWAVB on this device, with the baselines to judge it by.

    python -m benchmarks.train_speed --threads 1 --seconds 2 --json speed.json

Times the project's real step (`Trainer.train_step`) for each method, family and K and, in the same run,
(a) the naive baseline that loops over the K samples in Python (`variants.looped`), (b) pythae's IWAE
on the same MLP and batches (`pythae_iwae`, run in its own venv), (c) the device's GEMM throughput,
against which each step's FLOP count (from the shapes of its matrix products, `measure.MatmulFlops`)
gives a FLOP bound.
Prints a Markdown table (README.md in this folder explains each column).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from iwavb.core.config import METHODS, method_name, method_title
from iwavb.data.splits import DataSplits
from iwavb.training.config import TrainConfig
from iwavb.training.device import configure_cpu_threads, device_description, resolve_device
from iwavb.training.trainer import Trainer

from .measure import matmul_flops_per_s, measure
from .variants import CUDA_VARIANTS, VARIANTS
from .workload import add_workload_arguments, benchmark_data, parse_k_list

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".cache" / "bench-venv"
PYTHAE = "0.1.2"
VENV_HELP = f"python -m venv --system-site-packages {VENV} && {VENV}/bin/pip install pythae=={PYTHAE}"
FULL_SECONDS, FULL_K = 3.0, (1, 5, 10)
QUICK_SECONDS, QUICK_K = 0.5, (1, 10)


@dataclass(frozen=True)
class Row:
    family: str
    method: str
    k: int
    variant: str  # a name of variants.VARIANTS, or pythae
    contrast: str = "none"  # of an implicit q: none or adaptive
    steps_per_s: float | None = None  # the best ~0.25 s chunk
    mean_steps_per_s: float | None = None  # over the whole case
    flops_per_step: int | None = None
    peak_bytes: int | None = None
    host_syncs: int | None = None
    note: str = ""


def measure_case(config: TrainConfig, data: DataSplits, variant: str, seconds: float) -> Row:
    """One row: a fresh trainer, its step prepared by `variant`, measured; a failure becomes a note."""
    row = Row(config.family, config.method, config.k, variant, config.contrast)
    how = VARIANTS[variant]
    try:
        trainer = Trainer(dataclasses.replace(config, accelerate=how.accelerate), data)
        with ExitStack() as stack:
            step = how.build(trainer, stack)
            figures = measure(
                step,
                trainer.device,
                seconds,
                count_flops=how.eager,
                track_memory=how.eager or trainer.device.type == "cuda",
            )
    except Exception as err:
        return dataclasses.replace(row, note=f"failed: {type(err).__name__}: {str(err).splitlines()[0][:120]}")
    return dataclasses.replace(row, **dataclasses.asdict(figures))


def measure_pythae(args: argparse.Namespace, config: TrainConfig) -> Row:
    """pythae's IWAE with the settings of `config`, run by the benchmark venv's Python (`pythae_iwae`)."""
    row = Row(config.family, config.method, config.k, "pythae")
    command = [
        str(args.pythae_venv / "bin" / "python"),
        "-m",
        "benchmarks.pythae_iwae",
        "--k",
        str(config.k),
        "--data",
        args.data,
        "--batch",
        str(config.batch_size),
        "--latent",
        str(config.latent_dim),
        "--hidden",
        str(config.hidden),
        "--seconds",
        str(args.seconds),
        "--threads",
        str(torch.get_num_threads()),
        "--device",
        config.device,
    ]
    command += ["--data-root", str(args.data_root)] if args.data_root else []
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        return dataclasses.replace(row, note=f"failed: {(done.stderr.strip().splitlines() or ['no message'])[-1]}")
    figures = json.loads(done.stdout.splitlines()[-1])["rows"][0]
    del figures["k"]
    return dataclasses.replace(row, **figures)


def cases(args: argparse.Namespace, device: torch.device, pythae: bool) -> list[tuple[TrainConfig, str]]:
    """(config, variant) for each family, method, K and variant asked for; looped only where K > 1, and
    pythae's IWAE right after the project's vectorised step that it is compared with (mlp, Gaussian q)."""
    families = {"auto": ("mlp", "conv") if device.type == "cuda" else ("mlp",), "all": ("mlp", "conv")}
    out = []
    for family in families.get(args.family, (args.family,)):
        for k in args.k:
            for q in ("gaussian", "implicit"):
                if method_name(q, k) not in args.methods:
                    continue
                config = TrainConfig.for_method(
                    method_name(q, k),
                    k=k,
                    dataset=args.data,
                    latent_dim=args.latent,
                    family=family,
                    hidden=args.hidden,
                    batch_size=args.batch,
                    device=str(device),
                )
                out += [(config, v) for v in args.variants if v != "looped" or k > 1]
                out += [(config, "pythae")] if pythae and family == "mlp" and q == "gaussian" else []
    return out


def run_cases(args: argparse.Namespace, todo: list[tuple[TrainConfig, str]], data: DataSplits) -> list[Row]:
    """Every case, `--rounds` times (every other round in reverse order), keeping each case's fastest round."""
    best: dict[tuple[str, str, int, str, str], Row] = {}
    rounds = [todo if r % 2 == 0 else todo[::-1] for r in range(args.rounds)]
    for config, variant in tqdm(
        [case for cases_ in rounds for case in cases_], desc="cases", unit="case", file=sys.stderr
    ):
        if variant == "pythae":
            row = measure_pythae(args, config)
        else:
            row = measure_case(config, data, variant, args.seconds)
        key = (row.family, row.method, row.k, row.variant, row.contrast)
        if key not in best or (row.steps_per_s or 0) > (best[key].steps_per_s or 0):
            best[key] = row
    return list(best.values())


def with_shared_flops(rows: list[Row]) -> list[Row]:
    """Compiled and graphed steps do the vectorised step's work: give them its FLOP count."""
    counted = {(r.family, r.method, r.k, r.contrast): r.flops_per_step for r in rows if r.variant == "vectorised"}
    return [
        dataclasses.replace(r, flops_per_step=counted.get((r.family, r.method, r.k, r.contrast)))
        if r.flops_per_step is None and r.variant in VARIANTS and not VARIANTS[r.variant].eager
        else r
        for r in rows
    ]


def table(rows: list[Row], gemm: dict[str, float], cuda: bool) -> str:
    """The Markdown table: one line per row, in the order family, K, method, variant."""
    order = [*VARIANTS, "pythae"]
    rows = sorted(rows, key=lambda r: (r.family, r.k, METHODS.index(r.method), r.contrast, order.index(r.variant)))
    base = {(r.family, r.method, r.k, r.contrast): r.steps_per_s for r in rows if r.variant == "vectorised"}
    head = [
        "family",
        "method",
        "K",
        "variant",
        "steps/s",
        "ms/step",
        "GFLOP/step",
        "% of FLOP bound",
        "peak MiB",
        "× vectorised",
        *(["host syncs"] if cuda else []),
        "note",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def fmt(value: float | int | None, spec: str) -> str:
        return "–" if value is None else format(value, spec)

    for r in rows:
        rate, flops = r.steps_per_s, r.flops_per_step
        ceiling = gemm.get("bfloat16" if "amp" in r.variant else "float32", gemm["float32"])
        bound = 100 * rate * flops / ceiling if rate and flops else None
        reference = base.get((r.family, r.method, r.k, r.contrast))
        versus = rate / reference if rate and reference else None
        cells = [
            r.family,
            method_title(r.method, r.contrast).lower(),  # type: ignore[arg-type]  # names of METHODS
            str(r.k),
            r.variant,
            fmt(rate, ".1f"),
            fmt(rate and 1000 / rate, ".1f"),
            fmt(flops and flops / 1e9, ".3f"),
            fmt(bound, ".0f"),
            fmt(r.peak_bytes and r.peak_bytes / 2**20, ".1f"),
            fmt(versus, ".2f"),
            *([fmt(r.host_syncs, "d")] if cuda else []),
            r.note,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def header(meta: dict) -> str:
    gemm = ", ".join(
        f"{v / 1e9:.1f} GFLOP/s {k} (start {meta['gemm_start'][k] / 1e9:.1f}, end {meta['gemm_end'][k] / 1e9:.1f})"
        for k, v in meta["gemm_flops_per_s"].items()
    )

    def load(averages: tuple[float, ...]) -> str:
        return "/".join(f"{v:.2f}" for v in averages)

    return "\n".join(
        [
            f"command: `{meta['command']}` ({meta['date']})",
            f"device: {meta['device']}, torch {meta['torch']}; data: {meta['data']}",
            f"batch {meta['batch']}, l = {meta['latent']}, {meta['seconds']} s per case, best of {meta['rounds']} "
            f"round(s); GEMM ceiling: {gemm}",
            f"load average (1/5/15 min, {meta['cpu_count']} cores): before {load(meta['load_before'])}, "
            f"after {load(meta['load_after'])}",
            meta["pythae"],
        ]
    )


def choice_list(choices: tuple[str, ...]):
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(text.split(","))
        unknown = [i for i in items if i not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(unknown)}; choose from {', '.join(choices)}")
        return items

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.train_speed",
        description=__doc__.split("\n\n")[0],
        epilog="README.md in benchmarks/ explains the columns.",
    )
    add_workload_arguments(p)
    p.add_argument(
        "--family",
        choices=("auto", "mlp", "conv", "all"),
        default="auto",
        help="networks (default auto: mlp, and conv too on a GPU; conv runs ~0.1 steps/s at K = 1 on a 2-core CPU)",
    )
    p.add_argument("--methods", type=choice_list(METHODS), default=METHODS, help="default: vae,iwae,avb,iwavb")
    p.add_argument("--k", type=parse_k_list, default=None, help="importance samples (default: 1,5,10)")
    p.add_argument(
        "--variants",
        type=choice_list(tuple(VARIANTS)),
        default=None,
        help=f"ways to run the step, from {', '.join(VARIANTS)} "
        f"(default: vectorised,looped, plus {','.join(CUDA_VARIANTS)} on CUDA)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every case this many times, interleaved, and keep the fastest (default: 1)",
    )
    p.add_argument("--no-pythae", action="store_true", help="leave out pythae's IWAE")
    p.add_argument("--pythae-venv", type=Path, default=VENV, help=f"venv with pythae (default: {VENV})")
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_SECONDS} s per case and K = 1, 10, unless --seconds or --k say otherwise",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    p.set_defaults(seconds=None)
    args = p.parse_args(argv)
    if args.seconds is None:
        args.seconds = QUICK_SECONDS if args.quick else FULL_SECONDS
    if args.k is None:
        args.k = QUICK_K if args.quick else FULL_K
    if args.seconds <= 0 or args.batch < 1 or args.rounds < 1 or (args.threads is not None and args.threads < 1):
        p.error("--seconds, --batch, --rounds and --threads must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_cpu_threads(args.threads)
    try:
        device = resolve_device(args.device)
        variants = args.variants or ("vectorised", "looped", *(CUDA_VARIANTS if device.type == "cuda" else ()))
        args.variants = variants
        has_venv = (args.pythae_venv / "bin" / "python").exists()
        todo = cases(args, device, pythae=has_venv and not args.no_pythae)
    except (RuntimeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.no_pythae:
        pythae_note = "pythae: left out (--no-pythae)"
    elif has_venv:
        pythae_note = (
            f"pythae {PYTHAE} IWAE: its model and loss on this project's networks, same batches and fused Adam"
        )
    else:
        pythae_note = f"pythae skipped: no venv at {args.pythae_venv}; to include it: {VENV_HELP}"
    data, data_note = benchmark_data(args.data, args.data_root)
    data = data.to(device)  # once: every trainer then uses these tensors as they are
    load_before = os.getloadavg()
    dtypes = (torch.float32, *((torch.bfloat16,) if any("amp" in v for v in variants) else ()))
    gemm_start = {str(d).removeprefix("torch."): matmul_flops_per_s(device, d) for d in dtypes}
    rows = run_cases(args, todo, data)
    gemm_end = {str(d).removeprefix("torch."): matmul_flops_per_s(device, d) for d in dtypes}
    gemm = {d: max(gemm_start[d], gemm_end[d]) for d in gemm_start}  # the better of the two: a ceiling
    meta = {
        "command": " ".join(["python -m benchmarks.train_speed", *(sys.argv[1:] if argv is None else argv)]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "device": device_description(device),
        "torch": torch.__version__,
        "data": data_note,
        "batch": args.batch,
        "latent": args.latent,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "gemm_flops_per_s": gemm,
        "gemm_start": gemm_start,
        "gemm_end": gemm_end,
        "cpu_count": os.cpu_count(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "pythae": pythae_note,
    }
    rows = with_shared_flops(rows)
    print(header(meta) + "\n\n" + table(rows, gemm, device.type == "cuda"))
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": [dataclasses.asdict(r) for r in rows]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
