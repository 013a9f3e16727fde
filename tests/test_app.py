"""The app under streamlit.testing's AppTest: every page renders, training, loading, errors, URL settings.

AppTest runs the scripts in this process: `run_every` fragments do not fire by themselves (we call
`at.run()` again), Plotly charts come back as UnknownElement with the figure JSON in `.proto.spec`
(the live-charts component's figures are in its `.proto.json_args`), and the jobs are reached through
`at.session_state`. The `app` and `folders` fixtures are in conftest.py; tests/test_app_values.py checks
the numbers the pages show and what their buttons do.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import APP
from streamlit.testing.v1 import AppTest

from iwavb.training.config import TrainConfig
from iwavb.training.runs import owner_tag
from iwavb.training.trainer import Trainer

PAGES = ["pages/home.py", "pages/train.py", "pages/compare.py", "pages/posteriors.py", "pages/checkpoints.py"]


def on_page(at: AppTest, page: str) -> AppTest:
    at.run()
    return at.switch_page(page).run()


def charts(at: AppTest) -> list[dict]:
    """The Plotly figures on the page, as JSON: st.plotly_chart's, and those of the live-charts component."""
    figures = [json.loads(e.proto.spec) for e in at.get("plotly_chart")]
    for component in at.get("component_instance"):
        figures += [json.loads(f) for row in json.loads(component.proto.json_args)["rows"] for f in row]
    return figures


def trace_names(at: AppTest) -> list[str]:
    return [t.get("name", "") for fig in charts(at) for t in fig["data"]]


def save_toy_run(folder: Path, method: str = "avb", owner: str | None = None) -> Path:
    """A short toy run saved in `folder` (owned by the name `owner`, who may delete it in the app)."""
    config = TrainConfig.for_method(method, dataset="toy", latent_dim=2, steps=20, log_every=10, device="cpu")
    trainer = Trainer(config)
    list(trainer.run())
    tag = None if owner is None else owner_tag("name", owner)
    return trainer.save(folder / f"toy-{method}.safetensors", owner=tag)


def train_toy(at: AppTest, method: str = "avb", steps: int = 30) -> None:
    at.sidebar.selectbox(key="method").set_value(method)
    at.sidebar.number_input(key="steps").set_value(steps).run()
    next(b for b in at.button if b.label == "Start").click().run()
    assert at.session_state["job:train"].join(120)
    at.run()


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_default_settings(app, page):
    at = on_page(app, page)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.title, "every page has a title"


def test_home_renders_its_formulas_and_the_demo_button(app):
    at = app.run()
    assert at.title[0].value == "IWAVB Lab"
    assert any("(2.14)" in latex.value for latex in at.get("latex"))
    assert [b.label for b in at.button] == ["See it work"]


def test_the_first_page_renders_without_importing_torch():
    """The Home page is the first view: it must come up fast, so it may not pull in PyTorch."""
    code = (
        "import sys; from streamlit.testing.v1 import AppTest; "
        f"at = AppTest.from_file({str(APP)!r}, default_timeout=60).run(); "
        "assert not at.exception, at.exception; print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_see_it_work_starts_a_toy_run_when_nothing_is_pretrained(app):
    at = app.run()
    at.button[0].click().run()
    snap = at.session_state["job:train"].snapshot()
    assert snap.active and snap.runs[0].config.dataset == "toy" and snap.runs[0].name == "IWAVB"


def test_the_train_page_starts_a_toy_run_and_shows_its_metrics(app):
    at = on_page(app, "pages/train.py")
    train_toy(at, "avb", steps=30)
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["train objective (uses T)"]) < 0  # a log-likelihood-like number in nats
    assert float(metrics["steps / s"]) > 0
    names = trace_names(at)
    assert "AVB: train objective (uses T)" in names  # the bound chart, labelled for an implicit q
    assert {"loss", "accuracy"} <= set(names)  # the discriminator's chart
    assert any(fig["data"][0].get("type") == "image" for fig in charts(at))  # images and reconstructions
    assert not any("a 4 as a 9" in c.value for c in at.caption)  # the note on early look-alikes is for images


def test_bad_settings_are_a_message_not_a_traceback(app):
    at = on_page(app, "pages/train.py")
    at.sidebar.radio(key="family").set_value("conv").run()  # the conv family needs 28x28 images, not the toy
    if not torch.cuda.is_available():
        assert any("meant for a GPU" in w.value for w in at.warning)  # what conv costs on a CPU, said up front
    next(b for b in at.button if b.label == "Start").click().run()
    assert not at.exception
    assert any("conv family needs 28x28 images" in e.value for e in at.error)
    assert "job:train" not in at.session_state


def test_settings_live_in_the_url(app):
    at = app.switch_page("pages/train.py")
    at.query_params["method"] = "VAE"  # a selectbox stores its displayed option in the URL
    at.query_params["steps"] = "250"
    at.run()
    assert at.sidebar.selectbox(key="method").value == "vae"
    assert at.sidebar.number_input(key="steps").value == 250
    # Writing a changed widget into the URL is the browser's job: tests/test_browser.py checks it.


def test_the_train_pages_latent_size_starts_at_8_for_images_and_keeps_a_chosen_one(app):
    at = on_page(app, "pages/train.py")
    data, latent = at.sidebar.selectbox(key="data"), at.sidebar.select_slider(key="latent")
    assert (data.value, latent.value) == ("toy", 2)
    data.set_value("mnist").run()
    assert at.sidebar.select_slider(key="latent").value == 8  # untouched: it follows the data set's default
    data.set_value("toy").run()
    assert at.sidebar.select_slider(key="latent").value == 2
    at.sidebar.select_slider(key="latent").set_value(4).run()
    at.sidebar.selectbox(key="data").set_value("fashion").run()
    assert at.sidebar.select_slider(key="latent").value == 4  # chosen: it stays


def test_a_linked_latent_size_is_kept_for_images(app):
    at = app.switch_page("pages/train.py")
    at.query_params["data"] = "mnist"
    at.query_params["latent"] = "2"
    at.run()
    assert at.sidebar.select_slider(key="latent").value == 2
    at.query_params.pop("latent")
    at.sidebar.selectbox(key="data").set_value("fashion").run()
    assert at.sidebar.select_slider(key="latent").value == 2


def test_loading_a_checkpoint_opens_it_on_the_train_page(app, folders):
    _, runs = folders
    path = save_toy_run(runs, "iwae")
    at = on_page(app, "pages/checkpoints.py")
    assert not at.exception and not at.error
    assert any("log p(x)" in m.label for m in at.metric)  # exact for l = 2
    next(b for b in at.button if b.label == "Open on the Train page").click().run()
    job = at.session_state["job:train"]
    assert job.join(60) and job.specs[0].checkpoint == path
    at.run()
    assert not at.exception
    assert job.snapshot().runs[0].step == 20
    assert "IWAE: train bound" in trace_names(at)


def test_image_reconstructions_come_with_the_note_on_early_look_alikes(app, folders):
    """A shipped MNIST model opened on the Train page (its preview images: no data needed) shows its pictures with
    the note that early reconstructions draw similar digits alike; the toy's do not (see the test above)."""
    _, runs = folders
    shutil.copy(Path(APP).parent / "pretrained" / "mnist-l8-vae.safetensors", runs / "mnist-l8-vae.safetensors")
    at = on_page(app, "pages/checkpoints.py")
    next(b for b in at.button if b.label == "Open on the Train page").click().run()
    assert at.session_state["job:train"].join(60)
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert "What the model does at step 5,000" in json.dumps(charts(at))
    assert any("a 4 as a 9" in c.value for c in at.caption)


def test_a_bad_checkpoint_shows_an_error(app, folders):
    _, runs = folders
    (runs / "broken.safetensors").write_bytes(b"\x00" * 64)
    at = on_page(app, "pages/checkpoints.py")
    assert not at.exception
    assert any("broken.safetensors" in e.value for e in at.error)


def test_compare_trains_the_four_and_names_a_winner(app):
    at = on_page(app, "pages/compare.py")
    at.sidebar.number_input(key="steps_each").set_value(20).run()
    next(b for b in at.button if b.label.startswith("Train the four")).click().run()
    job = at.session_state["job:compare"]
    assert job.join(240)
    at.run()
    assert not at.exception and not at.error
    assert "wins** with exact log p(x)" in at.success[0].value
    assert "-1.386" in " ".join(m.value for m in at.markdown)
    assert {
        "VAE: train bound",
        "IWAE: train bound",
        "AVB: train objective (uses T)",
        "IWAVB: train objective (uses T)",
    } <= set(trace_names(at))


def test_posteriors_shows_the_true_posterior_weights_and_ess_of_a_session_run(app):
    at = on_page(app, "pages/train.py")
    train_toy(at, "iwae", steps=20)
    at.switch_page("pages/posteriors.py").run()
    assert not at.exception and not at.error
    posterior = next(fig for fig in charts(at) if fig["layout"].get("meta", {}).get("posterior_mass_99"))
    assert posterior["layout"]["images"][0]["source"].startswith("data:image/png")  # the true posterior, an image
    labels = [m.label for m in at.metric]
    assert "effective sample size" in labels and "exact log p(x)" in labels


def test_a_test_point_beyond_the_data_set_is_a_message(app, folders):
    from conftest import require_data

    from iwavb.data.splits import DataSplits, Split

    require_data("omniglot-py")  # 5,000 test images, fewer than the widget allows
    images = Split((torch.rand(8, 784) * 255).to(torch.uint8), torch.zeros(8, dtype=torch.long))
    config = TrainConfig.for_method("vae", dataset="omniglot", latent_dim=2, hidden=16, steps=1, device="cpu")
    Trainer(config, data=DataSplits("omniglot", images, images, images, ("a",))).save(folders[1] / "vae.safetensors")
    at = on_page(app, "pages/posteriors.py")
    at.sidebar.selectbox(key="data").set_value("omniglot").run()
    assert at.sidebar.selectbox(key="gaussian_model_omniglot").value == "vae (run)"  # picked on switching
    at.sidebar.number_input(key="point").set_value(6_000).run()
    assert not at.exception
    assert any("numbered 0 to 4999" in e.value for e in at.error)


def test_a_failed_run_is_a_message_in_the_page(app):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: device 'cuda' would not fail")
    at = on_page(app, "pages/train.py")
    at.sidebar.selectbox(key="device").set_value("cuda").run()
    next(b for b in at.button if b.label == "Start").click().run()
    assert at.session_state["job:train"].join(60)
    at.run()
    assert not at.exception
    assert any("PyTorch sees no GPU" in e.value for e in at.error)


def test_compare_loads_the_four_from_checkpoints(app, folders):
    pretrained, _ = folders
    for method in ("vae", "iwae", "avb", "iwavb"):
        save_toy_run(pretrained, method)
    at = on_page(app, "pages/compare.py")
    next(b for b in at.button if b.label == "Load the four from checkpoints").click().run()
    job = at.session_state["job:compare"]
    assert job.join(60) and [r.name for r in job.snapshot().runs] == ["VAE", "IWAE", "AVB", "IWAVB"]
    at.run()
    assert not at.exception and not at.error
    assert "wins** with exact log p(x)" in at.success[0].value


def test_see_it_work_loads_the_pretrained_toy_iwavb(app, folders):
    pretrained, _ = folders
    for method in ("vae", "iwavb"):
        save_toy_run(pretrained, method)
    at = app.run()
    at.button[0].click().run()
    job = at.session_state["job:train"]
    assert job.specs[0].checkpoint.name == "toy-iwavb.safetensors"
    assert job.join(60) and job.snapshot().runs[0].step == 20  # loaded as trained, not trained further


def test_compare_estimates_log_px_by_importance_sampling_when_l_is_above_2(app):
    at = on_page(app, "pages/compare.py")
    at.sidebar.select_slider(key="latent").set_value(8)
    at.sidebar.number_input(key="steps_each").set_value(20).run()
    next(b for b in at.button if b.label.startswith("Train the four")).click().run()
    assert at.session_state["job:compare"].join(240)
    at.run()
    assert at.warning and not at.success  # no exact log p(x) for l = 8: the page says so first
    next(b for b in at.button if b.label.startswith("Estimate log p(x)")).click().run()
    assert not at.exception and not at.error
    assert "IS (k = 500) on 200 test images" in at.success[0].value


def test_a_process_in_legacy_multipage_mode_leaves_it_and_serves_the_app(app, monkeypatch):
    """pages/parts/navigation.py's workaround: Streamlit starts in its legacy multipage mode because a pages/
    folder sits beside app.py. If an upgrade drops the private flag it relies on, this fails loudly."""
    import sys

    from streamlit.runtime.pages_manager import PagesManager

    assert hasattr(PagesManager, "uses_pages_directory"), (
        "Streamlit no longer has PagesManager.uses_pages_directory: see pages/parts/navigation.py"
    )
    monkeypatch.setattr(PagesManager, "uses_pages_directory", True)  # a fresh server process
    for name in [m for m in sys.modules if m.startswith("pages.parts")]:
        monkeypatch.delitem(sys.modules, name)  # as in that process: pages/parts not imported yet
    at = app.switch_page("pages/train.py").run()  # a first visitor who follows a link to /train
    assert not at.exception, at.exception
    assert PagesManager.uses_pages_directory is False
    assert at.title[0].value == "Train"
    assert "owner" in at.session_state  # app.py ran around the page: its sidebar's heartbeat names the session


def test_the_train_page_trains_with_adaptive_contrast(app):
    """The AC toggle is offered for an implicit q only, and the run it starts uses it."""
    at = on_page(app, "pages/train.py")
    at.sidebar.selectbox(key="method").set_value("vae").run()
    assert not [t for t in at.sidebar.toggle if t.key == "contrast"]
    at.sidebar.selectbox(key="method").set_value("iwavb").run()
    at.sidebar.toggle(key="contrast").set_value(True)
    at.sidebar.number_input(key="steps").set_value(20).run()
    next(b for b in at.button if b.label == "Start").click().run()
    job = at.session_state["job:train"]
    assert job.join(120)
    run = job.snapshot().runs[0]
    assert run.config.contrast == "adaptive" and run.name == "IWAVB + AC" and run.step == 20
