"""Sweeps on a local Ray with 2 CPUs (one Ray for the module): the tiny spec end to end, its numbers equal to
`train` and `eval` run one by one (one cell, to keep the suite short); a restart after an interruption runs
only the rest and leaves finished files as they were; a diverging trial is reported and retried while the
others finish."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import require_data
from test_sweep import TOY_SPEC

from iwavb.cli import main
from iwavb.evaluation.evaluate import eval_path, read_eval_results
from iwavb.sweep.engine import Event, plan, run_sweep
from iwavb.sweep.spec import load_spec
from iwavb.sweep.table import load_results
from iwavb.sweep.trial import trial_path

ray = pytest.importorskip("ray", reason="the sweep runs on Ray: pip install -r requirements-dev.txt")

TOY_GRID = TOY_SPEC.replace('method = ["avb", "iwavb"]', 'method = ["iwavb"]')


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray for the module, as `python -m iwavb sweep` starts it: no dashboard, this machine only."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_tiny_runs_end_to_end_and_equals_train_and_eval_one_by_one(tmp_path):
    require_data("MNIST")
    spec = load_spec("tiny")
    out = tmp_path / "tiny"
    report = run_sweep(spec, out, view=False)
    assert sorted(report.done) == sorted(t.name for t in spec.trials) and not report.failed
    results = load_results(out)
    swept = {t.name: t.nll for t in results.trials}
    e, cell = spec.evaluation, results.cells[0]  # one cell (two seeds) by hand: `train`, then `eval`
    by_hand = []
    for trial in (t for t in spec.trials if t.name in cell.trials):
        c, path = trial.config, tmp_path / "by-hand" / f"{trial.name}.safetensors"
        common = ["--threads", str(spec.resources.threads), "--device", "cpu"]
        train = ["train", "--data", c.dataset, "--method", c.method, "--k", str(c.k), "--latent", str(c.latent_dim)]
        train += ["--family", c.family, "--steps", str(c.steps), "--seed", str(c.seed), "--out", str(path)]
        assert main([*train, *common]) == 0
        assert (
            main(["eval", str(path), "--estimator", e.estimator, "--n-test", str(e.n_test), "--k", str(e.k), *common])
            == 0
        )
        (estimate,) = read_eval_results(path)
        assert swept[trial.name] == estimate.nll, trial.name  # the same number, not a close one
        by_hand.append(estimate.nll)
    mean = sum(by_hand) / 2
    assert cell.nll == tuple(by_hand) and cell.mean == mean
    assert cell.se == pytest.approx(abs(by_hand[0] - by_hand[1]) / 2, rel=1e-12)  # s.d. / sqrt(2) for n = 2
    assert "| mnist | " in (out / "results.md").read_text()


def test_a_restart_runs_only_the_rest_and_keeps_finished_files(tmp_path):
    path, out = tmp_path / "toy.toml", tmp_path / "out"
    path.write_text(TOY_GRID)
    spec = load_spec(path)

    def interrupt(event: Event) -> None:  # Ctrl-C as soon as one trial is done
        if event.kind == "done":
            raise KeyboardInterrupt

    first = run_sweep(spec, out, view=False, on_event=interrupt)
    assert first.interrupted and len(first.done) == 1
    finished = [t for t in spec.trials if plan(spec, out)[t.name].state == "done"]
    assert 1 <= len(finished) < len(spec.trials)
    kept = {}
    for t in finished:
        for f in (trial_path(out, t), eval_path(trial_path(out, t))):
            kept[f] = (f.read_bytes(), f.stat().st_mtime_ns)
    assert len(kept) == 2 * len(finished)
    second = run_sweep(spec, out, view=False)
    assert sorted(second.skipped) == sorted(t.name for t in finished)
    assert sorted(second.done) == sorted(t.name for t in spec.trials if t not in finished)
    assert {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in kept} == kept
    assert load_results(out).counts == {"done": 4, "failed": 0, "unfinished": 0}


def test_a_diverging_trial_is_reported_and_retried_while_the_others_finish(tmp_path, capsys):
    path, out = tmp_path / "nan.toml", tmp_path / "out"
    path.write_text(
        TOY_GRID.replace("k = [1, 3]", "k = [3]\nlr = [0.003, 1e30]").replace("seed = [0, 1]", "seed = [0]")
    )
    assert main(["sweep", str(path), "--out", str(out)]) == 1  # some trials failed
    err = capsys.readouterr().err
    bad = "toy-iwavb-k3-l2-mlp-s0-lr-1e+30"
    assert f"{bad} failed (attempt 1): training diverged" in err and "retrying" in err
    assert f"{bad} failed after 2 attempts: training diverged" in err
    results = load_results(out)
    states = {t.name: (t.state, t.reason) for t in results.trials}
    assert states["toy-iwavb-k3-l2-mlp-s0-lr-0.003"] == ("done", None)
    assert states[bad][0] == "failed" and "diverged" in (states[bad][1] or "")
    assert f"`{bad}`: training diverged" in (out / "results.md").read_text()
    assert not Path(trial_path(out, load_spec(path).trials[1])).exists()  # it never reached a checkpoint
