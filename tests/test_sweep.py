"""Sweeps without Ray: specs are checked whole with messages that name the line; a trial resumes from its
checkpoint; files of another run are refused; the results table's numbers; the library works without Ray."""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import pytest
from app_folders import empty_folders
from streamlit.testing.v1 import AppTest

from iwavb.cli import main
from iwavb.sweep.engine import plan, run_sweep
from iwavb.sweep.spec import SweepError, load_spec, parse_spec
from iwavb.sweep.table import collect_results, load_results, results_markdown, sweep_folder, write_results
from iwavb.sweep.trial import read_trial, run_trial, trial_path
from iwavb.training.config import TrainConfig
from iwavb.training.trainer import Trainer

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TOY_SPEC = """\
description = "toy grid"
retries = 1

[grid]
method = ["avb", "iwavb"]
k = [1, 3]
seed = [0, 1]

[train]
dataset = "toy"
latent_dim = 2
log_every = 10
eval_every = 20

[budget]
steps = 60

[eval]
estimator = "grid"
n_test = 50
grid_resolution = 61

[resources]
threads = 1
"""


def toy_spec(tmp_path: Path, text: str = TOY_SPEC, name: str = "toy.toml"):
    path = tmp_path / name
    path.write_text(text)
    return load_spec(path)


def test_a_toy_grid_becomes_its_trials(tmp_path):
    """Every combination of the grid is a trial, named by its run; what the spec leaves out is TrainConfig's."""
    spec = toy_spec(tmp_path, TOY_SPEC.replace('method = ["avb", "iwavb"]', 'method = ["iwavb"]'))
    assert [t.name for t in spec.trials] == [
        "toy-avb-k1-l2-mlp-s0",  # iwavb at K = 1 is AVB (Table 1's K = 1 column)
        "toy-avb-k1-l2-mlp-s1",
        "toy-iwavb-k3-l2-mlp-s0",
        "toy-iwavb-k3-l2-mlp-s1",
    ]
    config = spec.trials[2].config
    assert (config.dataset, config.q, config.k, config.steps, config.seed, config.device) == (
        "toy",
        "implicit",
        3,
        60,
        0,
        "cpu",
    )
    assert config.lr == TrainConfig(dataset="toy").lr  # what the spec leaves out is TrainConfig's default
    assert spec.evaluation.chains == 8 and spec.evaluation.n_test == 50 and spec.retries == 1


def _line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


@pytest.mark.parametrize(
    ("old", "new", "bad_line", "words"),
    [
        ('dataset = "toy"', 'dataset = "mnsit"', 'dataset = "mnsit"', "expected one of 'toy', 'mnist'"),
        ("k = [1, 3]", "k = [0, 3]", "k = [0, 3]", "K must be at least 1"),
        ('method = ["avb", "iwavb"]', 'methods = ["iwae"]', "methods =", "unknown key [grid] methods"),
        ("log_every = 10", "log_evry = 10", "log_evry", "unknown key [train] log_evry"),
        ("steps = 60", "steps = 0", "steps = 0", "steps must be a whole number of at least 1"),
        ("steps = 60", "minutes = 0", "minutes = 0", "minutes must be a number above 0"),
        ("retries = 1", "retries = 1\nresume = true", "resume = true", "unknown key resume"),
        ("n_test = 50", "n_test = 50\nchains = 0", "chains = 0", "chains must be a whole number at least 1, got 0"),
        ("threads = 1", "threads = 1\ngpu = 1.5", "gpu = 1.5", "gpu must be 0, a share of one GPU"),
        ("[budget]\nsteps = 60", "[budget]", "[budget]", "needs a [budget]"),
    ],
)
def test_a_bad_spec_is_refused_naming_its_line(tmp_path, old, new, bad_line, words):
    text = TOY_SPEC.replace(old, new)
    assert text != TOY_SPEC
    with pytest.raises(SweepError) as err:
        toy_spec(tmp_path, text)
    message = str(err.value)
    assert words in message and f"line {_line_of(text, bad_line)}" in message, message
    assert not (tmp_path / "sweeps").exists()


def test_a_grid_point_that_is_no_method_names_its_lines(tmp_path):
    """avb with K = 3 is no method: the message names the grid's lines and the point."""
    with pytest.raises(SweepError, match=r"lines 5, 6, 7: the grid point method = 'avb', k = 3.*AVB uses K = 1"):
        toy_spec(tmp_path)


def test_bad_toml_and_unknown_specs_are_refused(tmp_path):
    with pytest.raises(SweepError, match=r"not a valid TOML file.*line 2"):
        parse_spec('description = "x"\n[grid\n', tmp_path / "broken.toml")
    with pytest.raises(SweepError, match="shipped: table1-short, table1, tiny"):
        load_spec("table2")


def test_the_shipped_specs():
    tiny = load_spec("tiny")
    assert len(tiny.trials) == 4 and tiny.resources.gpu == 0 and tiny.budget.steps is not None
    for name in ("table1", "table1-short"):
        spec = load_spec(name)
        assert len(spec.trials) == 3 * 2 * 3 * 3
        assert {(t.config.family, t.config.q, t.config.contrast) for t in spec.trials} == {
            ("conv", "implicit", "adaptive")
        }
        assert {t.config.steps for t in spec.trials} == {150_000}
        assert (spec.evaluation.estimator, spec.evaluation.chains, spec.evaluation.steps) == ("ais", 8, 1000)
        assert spec.resources.gpu == 1
        assert all("-ac-" in t.name and "contrast" not in t.name for t in spec.trials)  # run_name says it
    assert load_spec("table1-short").budget.minutes == 5


def test_the_sweep_says_how_to_install_ray_when_it_is_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    path = tmp_path / "toy.toml"
    path.write_text(TOY_SPEC.replace('method = ["avb", "iwavb"]', 'method = ["iwavb"]'))
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "pip install 'ray==2.60.0'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing ran, nothing was written


def test_a_trial_resumes_from_its_checkpoint_and_finished_ones_are_refused_a_rewrite(tmp_path):
    spec = toy_spec(tmp_path, TOY_SPEC.replace('method = ["avb", "iwavb"]', 'method = ["iwavb"]'))
    trial, out = spec.trials[2], tmp_path / "out"
    partial = Trainer(trial.config)
    next(r for r in partial.run() if r.step == 20)  # stopped there, as by a kill after a checkpoint
    partial.save(trial_path(out, trial))
    assert plan(spec, out)[trial.name].state == "partial"
    phases = []
    outcome = run_trial(trial, spec, out, lambda phase, fraction: phases.append((phase, fraction)))
    assert outcome.resumed_from == 20 and outcome.step == 60
    assert phases[-1] == ("eval", 1.0) and ("train", 1.0) in phases
    files = read_trial(out, trial, spec.budget, spec.evaluation)
    assert files.state == "done" and files.estimate is not None and files.estimate.nll == outcome.nll
    with pytest.raises(SweepError, match="is finished"):
        run_trial(trial, spec, out)


def test_files_of_another_run_are_refused_and_kept(tmp_path):
    spec = toy_spec(tmp_path, TOY_SPEC.replace('method = ["avb", "iwavb"]', 'method = ["iwavb"]'))
    trial, out = spec.trials[0], tmp_path / "out"
    path = Trainer(dataclasses.replace(trial.config, lr=0.01)).save(trial_path(out, trial))
    before = path.read_bytes()
    with pytest.raises(SweepError, match=r"other settings \(lr 0.01 there, 0.003 in the spec\)"):
        run_sweep(spec, out, view=False)
    assert path.read_bytes() == before


def test_the_results_table_and_the_checkpoints_page(tmp_path, monkeypatch):
    """The table's numbers from the trials' files; the app's Checkpoints page shows it and opens a trial."""
    for name, value in empty_folders(tmp_path).items():
        monkeypatch.setenv(name, value)
    text = TOY_SPEC.replace('method = ["avb", "iwavb"]', 'method = ["iwavb"]').replace("k = [1, 3]", "k = [1]")
    spec = toy_spec(tmp_path, text)
    out = sweep_folder(spec.name)
    outcomes = [run_trial(t, spec, out) for t in spec.trials]
    results = collect_results(spec, out)
    (cell,) = results.cells
    nll = [o.nll for o in outcomes]
    mean = sum(nll) / 2
    assert cell.nll == tuple(nll) and cell.mean == pytest.approx(mean)
    assert cell.se == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in nll) / 2))  # s.d. / sqrt(2), n = 2
    assert cell.paper is None and cell.steps == (60, 60) and cell.seeds == (0, 1)
    markdown = results_markdown(results)
    assert f"| toy | {mean:.2f} ± {cell.se:.2f} |" in markdown and "2 of 2 trials done" in markdown
    write_results(results, out)
    assert load_results(out) == results

    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/checkpoints.py").run()
    assert not at.exception and not at.error
    assert any(f"| toy | {mean:.2f} ± {cell.se:.2f} |" in m.value for m in at.markdown)
    at.selectbox(key="sweep_trial").set_value(spec.trials[1].name)
    next(b for b in at.button if b.label == "Open this trial on the Train page").click().run()
    job = at.session_state["job:train"]
    try:
        assert job.join(60) and job.specs[0].checkpoint == trial_path(out, spec.trials[1])
    finally:
        job.close()
