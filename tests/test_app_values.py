"""The numbers the pages show equal what the library computes for the same model and settings, and the
buttons do what they say: Train's Pause, Resume, Save and Stop, Checkpoints' Delete.

Expected values are computed here from the checkpoint file itself with the library's lower layers (the grid
of iwavb.evaluation, the bound of iwavb.core), not read back from the app's session. Toy runs of 20 steps.
"""

from __future__ import annotations

import time

import torch
from streamlit.testing.v1 import AppTest
from test_app import on_page, save_toy_run

from iwavb.app.views import posterior_view
from iwavb.core.model import LatentVariableModel
from iwavb.data.toy import toy_points
from iwavb.evaluation.grid import posterior_grid
from iwavb.training.checkpoint import load_checkpoint

METHODS = ("vae", "iwae", "avb", "iwavb")


def checkpoint_model(path) -> LatentVariableModel:
    return load_checkpoint(path).build_model()


def exact_toy_score(path) -> float:
    """Mean exact log p(x) over the four toy points, on the pages' grid (201 points over [-5, 5]^2)."""
    return float(posterior_grid(checkpoint_model(path), toy_points(), resolution=201).log_px.mean())


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def test_checkpoints_shows_the_exact_score_and_delete_removes_the_file(app, folders):
    _, runs = folders
    path = save_toy_run(runs, "iwae", owner="ada")
    expected = exact_toy_score(path)
    at = on_page(app, "pages/checkpoints.py")
    at.sidebar.text_input(key="owner_name").set_value("Ada").run()  # its owner, by name in any case
    assert not at.exception and not at.error
    assert metrics(at)["exact log p(x)"] == f"{expected:.3f}"
    table = at.dataframe[0].value
    assert table["log p(x)"].tolist() == [round(expected, 3)] and table["measured by"].tolist() == ["exact log p(x)"]

    button(at, "Delete").click().run()  # in the "Delete this run" popover
    assert not path.exists()
    assert not at.exception
    assert any("No checkpoints yet" in i.value for i in at.info)


def test_posteriors_shows_the_log_px_bound_and_ess_of_the_chosen_settings(app, folders):
    _, runs = folders
    path = save_toy_run(runs, "iwae")
    model = checkpoint_model(path)
    point, k, draw = 2, 7, 3
    at = on_page(app, "pages/posteriors.py")
    at.sidebar.number_input(key="point").set_value(point)
    at.sidebar.slider(key="k").set_value(k)
    at.sidebar.number_input(key="draw").set_value(draw).run()
    assert not at.exception and not at.error
    shown = metrics(at)
    x = toy_points()[point]  # the toy's test points are its four points, in order
    exact = float(posterior_grid(model, x.unsqueeze(0), extent=8.0, resolution=401).log_px[0])
    assert abs(float(shown["exact log p(x)"]) - exact) < 2e-3  # the page's grid against a finer, wider one
    view = posterior_view(model, x, k, seed=draw)  # the same draw of K samples
    assert shown["exact log p(x)"] == f"{view.log_px:.3f}"
    assert shown[f"bound, K = {k}"] == f"{view.bound:.3f}"
    assert shown["effective sample size"] == f"{view.ess:.1f} of {k}"


def test_compare_names_the_winner_and_margins_of_the_exact_scores(app, folders):
    pretrained, _ = folders
    scores = {m.upper(): exact_toy_score(save_toy_run(pretrained, m)) for m in METHODS}
    at = on_page(app, "pages/compare.py")
    button(at, "Load the four from checkpoints").click().run()
    assert at.session_state["job:compare"].join(60)
    at.run()
    assert not at.exception and not at.error
    (best, best_score), (second, second_score) = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)[:2]
    assert at.success[0].value.endswith(
        f"**{best} wins** with exact log p(x) = **{best_score:.3f}** nats, "
        f"{best_score - second_score:.3f} ahead of {second}."
    )
    text = " ".join(m.value for m in at.markdown)
    for a, b in (("VAE", "IWAE"), ("AVB", "IWAVB"), ("VAE", "AVB"), ("IWAE", "IWAVB")):
        delta = scores[b] - scores[a]
        signed = f"+{delta:.3f}" if delta >= 0 else f"−{abs(delta):.3f}"
        assert f"{signed} nats ({a} → {b})" in text, (a, b, text)


def wait_for(predicate, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s:.0f} s"
        time.sleep(0.05)


def test_train_pause_freezes_the_step_resume_goes_on_save_writes_a_loadable_file_and_stop_ends(app, folders):
    _, runs = folders
    at = on_page(app, "pages/train.py")
    at.sidebar.selectbox(key="method").set_value("vae")
    at.sidebar.number_input(key="steps").set_value(1_000_000).run()
    button(at, "Start").click().run()
    job = at.session_state["job:train"]

    def step() -> int:
        return job.snapshot().runs[0].step

    wait_for(lambda: step() > 0, "the first steps")

    button(at, "Pause").click().run()
    assert job.snapshot().status == "paused"
    time.sleep(0.2)  # a step in progress when Pause was pressed ends
    trainer = job.trainer()
    paused_at = trainer.step
    time.sleep(0.5)
    assert trainer.step == paused_at  # frozen
    assert [b.label for b in at.button if b.label in ("Pause", "Resume")] == ["Resume"]

    button(at, "Resume").click().run()
    assert job.snapshot().status == "running"
    wait_for(lambda: trainer.step > paused_at + 10, "training after Resume")

    button(at, "Save checkpoint").click().run()
    saved = list(runs.glob("*.safetensors"))
    assert len(saved) == 1 and any(str(saved[0]) in s.value for s in at.success)
    checkpoint = load_checkpoint(saved[0])
    assert checkpoint.config == trainer.config and 0 < checkpoint.step <= trainer.step
    model = checkpoint.build_model()
    assert all(torch.isfinite(p).all() for p in model.parameters())

    button(at, "Stop").click().run()
    assert job.snapshot().status == "stopped"
    stopped_at = trainer.step
    time.sleep(0.3)
    assert trainer.step == stopped_at and not job.snapshot().active
    assert button(at, "Pause").disabled and button(at, "Stop").disabled
