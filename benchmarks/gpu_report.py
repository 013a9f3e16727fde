"""The GPU check's report as Markdown: one section per part, its figures and its time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from iwavb.core.config import method_title


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _error(part: Any) -> str | None:
    return part.get("error") if isinstance(part, dict) else None


def _environment(env: dict[str, Any]) -> list[str]:
    gemm = ", ".join(f"{k} {v / 1e12:.1f} TFLOP/s" for k, v in env["gemm_flops_per_s"].items())
    return [
        f"{env['device']}; Python {env['python']}, PyTorch {env['torch']} (CUDA {env['cuda']}); GEMM: {gemm}.",
        f"`accelerate=auto` on CUDA: {env['cuda_auto']['mlp']} (mlp), {env['cuda_auto']['conv']} (conv).",
    ]


def _steps(part: dict[str, Any]) -> list[str]:
    head = "| case | way | steps/s | ms/step | GFLOP/step | % of bf16 bound | peak GiB | host syncs | note |"
    lines = [
        "% of bf16 bound: steps/s x FLOPs per step / the bfloat16 GEMM's rate (float32's where none was measured);",
        "peak GiB: the most memory allocated while the case ran (weights and Adam state included).",
        "",
        head,
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in part["rows"]:
        rate, peak = r["steps_per_s"], r["peak_run_bytes"] or r["peak_bytes"]
        share = r["bf16_bound_share"]
        lines.append(
            f"| {method_title(r['method'], r['contrast'])} K={r['k']} | {r['variant']} | {_fmt(rate, '.2f')} "
            f"| {_fmt(rate and 1000 / rate, '.1f')} | {_fmt(r['flops_per_step'] and r['flops_per_step'] / 1e9, '.3g')} "
            f"| {_fmt(share and 100 * share, '.0f')} | {_fmt(peak and peak / 2**30, '.2f')} "
            f"| {_fmt(r['host_syncs'], 'd')} | {r['note']} |"
        )
    lines += ["", "| case | fastest way | steps/s | % of bf16 bound | × looped K | auto | auto is fastest |"]
    lines.append("|---|---|---|---|---|---|---|")
    for s in part["summary"]:
        lines.append(
            f"| {s['case']} | {s['fastest']} | {s['steps_per_s']:.2f} | "
            f"{_fmt(s['bf16_bound_share'] and 100 * s['bf16_bound_share'], '.0f')} | {_fmt(s['x_looped'], '.1f')} "
            f"| {s['auto']} | {'yes' if s['auto_is_fastest'] else 'NO'} |"
        )
    return lines


def _agreement(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| way | mean bound of the first steps | minus plain float32 |", "|---|---|---|"]
    lines += [f"| {r['way']} | {r['mean_bound']:.3f} | {r['minus_plain']:+.3f} |" for r in rows]
    return lines


def _training(t: dict[str, Any]) -> list[str]:
    return [
        f"{t['run']} ({t['accelerate']}): {t['steps']:,} steps in {t['seconds'] / 60:.1f} min "
        f"({t['steps_per_s']:.1f} steps/s), validation objective (uses T) {t['validation_objective']:.2f}, "
        f"peak {_fmt(t['peak_bytes'] and t['peak_bytes'] / 2**30, '.1f')} GiB."
    ]


def _devices(d: dict[str, Any]) -> list[str]:
    verdict = "agree" if d["agree"] else "DISAGREE"
    return [
        f"The trained model's objective on {d['images']} validation images, the same weights: {d['device']:.3f} "
        f"on the device, {d['cpu']:.3f} on the CPU; difference {d['difference']:+.3f} ± {d['se']:.3f} "
        f"(s.e. of the paired differences: Monte Carlo noise of the two devices' own draws): they {verdict}."
    ]


def _ais(a: dict[str, Any]) -> list[str]:
    n, t = a["nll"], a["timing"]
    return [
        f"Throughput at {t['chains']} chains x 1,000 distributions (the paper's: 8): {a['images_per_s_paper']:.3f} "
        "images/s "
        f"(chunks of {a['chunk_images']} images; measured at {t['steps'][0]} and {t['steps'][1]} distributions: "
        f"{t['seconds'][0]:.1f} s and {t['seconds'][1]:.1f} s per chunk).",
        f"The 10,000 test images at that setting, extrapolated: {a['test_split_seconds_paper'] / 60:.0f} min.",
        f"NLL on {n['images']} test images: AIS ({n['ais_steps']} distributions, reads low) "
        f"{n['ais']['nll']:.2f} ± {n['ais']['se']:.2f} nats in {n['ais_seconds']:.0f} s "
        f"(acceptance {_fmt(n['ais_acceptance'], '.2f')}); IS (k = {n['is_k']:,}) {n['is']['nll']:.2f} ± "
        f"{n['is']['se']:.2f}.",
    ]


SECTIONS: dict[str, tuple[str, Callable[[Any], list[str]]]] = {
    "environment": ("Environment", _environment),
    "steps": ("The training step", _steps),
    "agreement": ("Agreement of the ways (same seed)", _agreement),
    "training": ("A short training run", _training),
    "devices": ("The same model on the device and on the CPU", _devices),
    "ais": ("AIS", _ais),
}


def markdown(report: dict[str, Any]) -> str:
    seconds = report.get("seconds", {})
    lines = [
        f"# GPU check ({report['plan']['name']}): {report.get('total_seconds', 0) / 60:.1f} min "
        f"of a {report['budget_s'] / 60:g}-minute budget",
    ]
    for key, (title, render) in SECTIONS.items():
        if key not in report:
            continue
        lines += ["", f"## {title} ({seconds.get(key, 0):.0f} s)", ""]
        error = _error(report[key])
        lines += [f"failed: {error}"] if error else render(report[key])
    imports = report.get("forbidden_imports", [])
    lines += ["", f"Imported outside the library's dependencies: {', '.join(imports) or 'nothing'}."]
    return "\n".join(lines) + "\n"
