"""Mutation testing of the core with mutmut: how many planted bugs the tests catch, module by module.

    python -m benchmarks.mutation                      # every module of [tool.mutmut] only_mutate, one by one
    python -m benchmarks.mutation core/bounds data/splits --max-children 2
    python -m benchmarks.mutation --report             # the table and survivors of the last runs, no new run

mutmut (pinned in requirements-dev.txt; configured in pyproject.toml's [tool.mutmut]) copies the package
and the tests into mutants/, plants one small change at a time in a function (an operator, a constant, an
argument dropped) and runs the selected tests that execute that function; a mutant is killed when one of
them fails. Each module is one `mutmut run "iwavb.<module>*"`, so that a long run can be split (on a shared
machine: one module per `flock /tmp/iwavb-heavy.lock ...`). The report, in Markdown, gives per module the
mutants, how many were caught and the score, then each survivor's diff: docs/mutation.md says why each
one cannot change a result, or which test now kills it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"

# mutmut's exit codes per mutant (mutmut.stats.status_by_exit_code): a failing test, an internal pytest error,
# a timeout, a crash or the type checker each catch the mutant; None is a mutant not run yet.
CAUGHT = {1: "killed", 3: "killed", 36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout"}
CAUGHT |= {-11: "crashed", -9: "crashed", 37: "caught by type check"}
NOT_CAUGHT = {0: "survived", 5: "no tests", 33: "no tests", 35: "suspicious"}


def configured_modules() -> list[str]:
    """The modules of pyproject.toml's [tool.mutmut] only_mutate, as paths below iwavb/ without .py."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return [path.removeprefix("iwavb/").removesuffix(".py") for path in config["only_mutate"]]


@dataclass(frozen=True)
class ModuleScore:
    module: str  # "core/bounds"
    counts: Counter[str]  # status -> mutants
    survivors: list[str]  # mutant names not caught (survived, no tests, suspicious)

    @property
    def checked(self) -> int:
        return sum(n for status, n in self.counts.items() if status not in ("not checked", "skipped"))

    @property
    def caught(self) -> int:
        return sum(self.counts[status] for status in set(CAUGHT.values()))

    @property
    def score(self) -> float:
        return self.caught / self.checked if self.checked else float("nan")


def module_score(module: str) -> ModuleScore:
    """The results of the last run of a module, from mutmut's record beside its mutated copy."""
    meta = MUTANTS / "iwavb" / f"{module}.py.meta"
    if not meta.exists():
        return ModuleScore(module, Counter(), [])
    codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    counts: Counter[str] = Counter()
    survivors = []
    for name, code in codes.items():
        if code is None:
            counts["not checked"] += 1
        elif code in CAUGHT:
            counts[CAUGHT[code]] += 1
        else:
            counts[NOT_CAUGHT.get(code, "suspicious")] += 1
            survivors.append(name)
    return ModuleScore(module, counts, survivors)


def run_module(module: str, max_children: int) -> float:
    """One `mutmut run` over a module's mutants (all of them anew); its output goes to mutants/<module>.log."""
    name = "iwavb." + module.replace("/", ".") + "*"
    log = MUTANTS / f"{module.replace('/', '.')}.log"
    log.parent.mkdir(exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "IWAVB_THREADS": "1"}
    start = time.monotonic()
    with log.open("w") as out:
        command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children), name]
        subprocess.run(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, check=True)
    return time.monotonic() - start


def diff(mutant: str) -> str:
    """The mutant's change, as `mutmut show` prints it (its lines starting with - or +)."""
    shown = subprocess.run(
        [sys.executable, "-m", "mutmut", "show", mutant], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return "\n".join(line for line in shown.splitlines() if line[:1] in "-+" and not line.startswith(("---", "+++")))


def report(scores: list[ModuleScore], seconds: dict[str, float]) -> str:
    lines = [
        "| module | mutants | caught | survived | no tests | score | minutes |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in scores:
        minutes = f"{seconds[s.module] / 60:.1f}" if s.module in seconds else ""
        lines.append(
            f"| `iwavb/{s.module}.py` | {s.checked} | {s.caught} | {s.counts['survived']} | {s.counts['no tests']} "
            f"| {s.score:.1%} | {minutes} |"
        )
    for s in scores:
        if s.survivors:
            lines += ["", f"### `iwavb/{s.module}.py`: {len(s.survivors)} not caught", ""]
            for mutant in s.survivors:
                lines += [f"`{mutant.split('.')[-1]}`", "```diff", diff(mutant), "```"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="e.g. core/bounds (default: every configured module)")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1, help="mutants tested at once")
    parser.add_argument("--report", action="store_true", help="only report the last runs' results")
    args = parser.parse_args(argv)
    known = configured_modules()
    modules = args.modules or known
    unknown = sorted(set(modules) - set(known))
    if unknown:
        parser.error(f"not configured for mutation testing: {', '.join(unknown)}; choose from {', '.join(known)}")
    seconds = {} if args.report else {m: run_module(m, args.max_children) for m in modules}
    print(report([module_score(m) for m in modules], seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
