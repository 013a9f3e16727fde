"""Mutation testing of the core with mutmut: how many planted bugs the tests catch, module by module.

    python -m benchmarks.mutation                      # every module of [tool.mutmut] only_mutate, one by one
    python -m benchmarks.mutation core/bounds data/splits --max-children 2
    python -m benchmarks.mutation --report             # the table and survivors of the last runs, no new run
    python -m benchmarks.mutation core/bounds --survivors   # after adding tests: only the last survivors again
    python -m benchmarks.mutation core/nets --recheck tests/test_networks.py   # the same, without a mutmut run

mutmut (pinned in requirements-dev.txt; configured in pyproject.toml's [tool.mutmut]) copies the package
and the tests into mutants/, plants one small change at a time in a function (an operator, a constant, an
argument dropped) and runs the selected tests that execute that function; a mutant is killed when one of
them fails. Each module is one `mutmut run "iwavb.<module>*"`, so that a long run can be split (on a shared
machine: one module per `flock /tmp/iwavb-heavy.lock ...`). Each module's result is kept in .cache/mutation/ (mutmut
resets its own whenever the tests change). The report, in Markdown, gives per module the mutants, how many
were caught and the score, then each survivor's diff: docs/mutation.md says why each one cannot change a
result, or which test now kills it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"
SCORES = ROOT / ".cache" / "mutation"  # each module's last result, kept apart from mutmut's own (which it resets)

# mutmut's exit codes per mutant (mutmut.stats.status_by_exit_code): a failing test, an internal pytest error,
# a timeout, a crash or the type checker each catch the mutant; None is a mutant not run yet.
CAUGHT = {1: "killed", 3: "killed", 36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout"}
CAUGHT |= {-11: "crashed", -9: "crashed", 37: "caught by type check"}
NOT_CAUGHT = {0: "survived", 5: "no tests", 33: "no tests", 35: "suspicious"}


def configured_modules() -> list[str]:
    """The modules of pyproject.toml's [tool.mutmut] only_mutate, as paths below iwavb/ without .py."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return [path.removeprefix("iwavb/").removesuffix(".py") for path in config["only_mutate"]]


STATUS_BY_CODE = CAUGHT | NOT_CAUGHT


@dataclass(frozen=True)
class ModuleScore:
    """A module's last measured result: every mutant's status, when, at which commit, how long it took."""

    module: str  # "core/bounds"
    status: dict[str, str]  # mutant name -> killed, timeout, survived, no tests, ...
    diffs: dict[str, str]  # the change of each mutant not caught
    date: str
    commit: str
    minutes: float

    @property
    def counts(self) -> Counter[str]:
        return Counter(self.status.values())

    @property
    def survivors(self) -> list[str]:
        return [name for name, status in self.status.items() if status not in CAUGHT.values()]

    @property
    def unsure(self) -> list[str]:
        """The mutants to test again after adding tests: the survivors, and those caught only by a timeout."""
        return [name for name, status in self.status.items() if status not in ("killed", "crashed")]

    @property
    def caught(self) -> int:
        return sum(1 for status in self.status.values() if status in CAUGHT.values())

    @property
    def score(self) -> float:
        return self.caught / len(self.status) if self.status else float("nan")


def score_path(module: str) -> Path:
    return SCORES / f"{module.replace('/', '.')}.json"


def load_score(module: str) -> ModuleScore | None:
    path = score_path(module)
    return ModuleScore(**json.loads(path.read_text())) if path.exists() else None


def measured_status(module: str) -> dict[str, str]:
    """The status of each mutant of a module that mutmut has tested since its results were last reset
    (mutmut resets them all when the tests or its configuration change: hence SCORES)."""
    codes: dict[str, int | None] = json.loads((MUTANTS / "iwavb" / f"{module}.py.meta").read_text())["exit_code_by_key"]
    return {name: STATUS_BY_CODE.get(code, "suspicious") for name, code in codes.items() if code is not None}


def run_mutmut(names: list[str], max_children: int, log: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "IWAVB_THREADS": "1"}
    with log.open("w") as out:
        command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children), *names]
        subprocess.run(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, check=True)


def measure(module: str, max_children: int, survivors_only: bool) -> ModuleScore:
    """Run mutmut over a module's mutants (or only over those its last result did not catch) and keep the
    result in SCORES; mutmut's own output goes to mutants/<module>.log."""
    previous = load_score(module) if survivors_only else None
    if survivors_only and previous is None:
        raise SystemExit(f"{module}: no earlier result to take the survivors from; run it whole first")
    names = previous.unsure if previous is not None else ["iwavb." + module.replace("/", ".") + "*"]
    SCORES.mkdir(parents=True, exist_ok=True)
    MUTANTS.mkdir(exist_ok=True)
    start = time.monotonic()
    if names:
        run_mutmut(names, max_children, MUTANTS / f"{module.replace('/', '.')}.log")
    minutes = (time.monotonic() - start) / 60
    status = measured_status(module)
    if previous is not None:  # the survivors again: the others keep their status
        status = {**previous.status, **{name: status[name] for name in names if name in status}}
        minutes += previous.minutes
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    result = ModuleScore(
        module,
        status,
        {name: diff(name) for name in status if status[name] not in CAUGHT.values()},
        time.strftime("%Y-%m-%d"),
        commit.stdout.strip(),
        round(minutes, 1),
    )
    score_path(module).write_text(json.dumps(dataclasses.asdict(result), indent=1, ensure_ascii=False))
    return result


def diff(mutant: str) -> str:
    """The mutant's change, as `mutmut show` prints it (its lines starting with - or +)."""
    shown = subprocess.run(
        [sys.executable, "-m", "mutmut", "show", mutant], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return "\n".join(_change(shown))


def _change(diff_text: str) -> list[str]:
    """The lines of a unified diff that it removes or adds (not its file headers)."""
    return [line for line in diff_text.splitlines() if line[:1] in "-+" and not line.startswith(("---", "+++"))]


def changed_lines(diff_text: str) -> tuple[str, ...]:
    """A mutant's change without its indentation: what finds it again after its function is renumbered."""
    return tuple(line.strip() for line in _change(diff_text))


def recheck(module: str, tests: list[str]) -> dict[str, str]:
    """Each survivor of the module's last result run against `tests` as they are now, without a mutmut run (whose
    first minutes time every test again). The survivors are found by their change among the mutants in mutants/,
    which the last `mutmut run` of any module generated from the code of then: a function that gained or lost
    mutants since numbers them anew. Each runs in a copy of mutants/ holding today's tests, by mutmut's own switch
    (MUTANT_UNDER_TEST). Returns per survivor 'killed', 'survived', or 'gone' (its change is no longer in the code)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant  # mutmut's: the change of a mutant, from mutants/

    previous = load_score(module)
    if previous is None:
        raise SystemExit(f"{module}: no earlier result to take the survivors from; run it whole first")
    path = MUTANTS / "iwavb" / f"{module}.py"
    now: dict[tuple[str, ...], list[str]] = {}
    for name in json.loads(Path(f"{path}.meta").read_text())["exit_code_by_key"]:
        now.setdefault(changed_lines(get_diff_for_mutant(name, path=path)), []).append(name)
    copy = ROOT / ".cache" / "mutation-recheck"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(MUTANTS, copy, ignore=shutil.ignore_patterns("*.log", "tests"))
    shutil.copytree(ROOT / "tests", copy / "tests")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "IWAVB_THREADS": "1"}
    pytest = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:playwright", *tests]
    result = {}
    for old in previous.survivors:
        matches = now.get(changed_lines(previous.diffs[old]), [])
        if not matches:
            result[old] = "gone"
            print(f"{old.split('.')[-1]}: gone (its change is no longer in the code)", flush=True)
        for name in matches:
            run = subprocess.run(pytest, cwd=copy, env={**env, "MUTANT_UNDER_TEST": name}, capture_output=True)
            result[name] = {0: "survived", 1: "killed"}.get(run.returncode, f"pytest exit {run.returncode}")
            print(f"{old.split('.')[-1]} (now {name.split('.')[-1]}): {result[name]}", flush=True)
    shutil.rmtree(copy)
    return result


def report(scores: list[ModuleScore]) -> str:
    lines = [
        "| module | mutants | caught | survived | no tests | score | minutes | measured |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in scores:
        lines.append(
            f"| `iwavb/{s.module}.py` | {len(s.status)} | {s.caught} | {s.counts['survived']} | "
            f"{s.counts['no tests']} | {s.score:.1%} | {s.minutes} | {s.date}, {s.commit} |"
        )
    for s in scores:
        if s.survivors:
            lines += ["", f"### `iwavb/{s.module}.py`: {len(s.survivors)} not caught", ""]
            for mutant in s.survivors:
                lines += [f"`{mutant.split('.')[-1]}` ({s.status[mutant]})", "```diff", s.diffs[mutant], "```"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="e.g. core/bounds (default: every configured module)")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1, help="mutants tested at once")
    parser.add_argument(
        "--survivors", action="store_true", help="test again only the last result's survivors (and timeouts)"
    )
    parser.add_argument("--report", action="store_true", help="only report the last results, run nothing")
    parser.add_argument(
        "--recheck", nargs="+", metavar="TEST", help="run the last survivors against these tests, without mutmut"
    )
    args = parser.parse_args(argv)
    known = configured_modules()
    modules = args.modules or known
    unknown = sorted(set(modules) - set(known))
    if unknown:
        parser.error(f"not configured for mutation testing: {', '.join(unknown)}; choose from {', '.join(known)}")
    if args.recheck:
        for module in modules:
            counts = Counter(recheck(module, args.recheck).values())
            print(f"{module}: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
        return 0
    if args.report:
        scores = [score for m in modules if (score := load_score(m)) is not None]
    else:
        scores = [measure(m, args.max_children, args.survivors) for m in modules]
    print(report(scores))
    return 0


if __name__ == "__main__":
    sys.exit(main())
