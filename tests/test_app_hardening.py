"""The app under bad files, races and bad links: every page renders, a delete acts on what was confirmed, two
sessions never overwrite each other's runs, and a link's value that does not fit is a notice, not a silent
default. (AppTest: see tests/test_app.py for how it is driven.)"""

from __future__ import annotations

import json
import math
import os
import tempfile
import tomllib
from pathlib import Path

import pytest
import torch
from conftest import APP, APP_TIMEOUT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from streamlit.testing.v1 import AppTest
from test_bad_checkpoints import EXTREMES, JSON_VALUES, mutated, places, tiny_run, write

from iwavb.training.checkpoint import META_KEY
from iwavb.training.runs import owner_tag

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["pages/checkpoints.py", "pages/compare.py", "pages/posteriors.py", "pages/train.py"]


def session(page: str, name: str | None = None, query: dict[str, str] | None = None) -> AppTest:
    """A browser session on `page` (with a chosen owner name, and a link's settings)."""
    at = AppTest.from_file(APP, default_timeout=APP_TIMEOUT)
    at.run()  # the Home page first, as tests/test_app.py's on_page does: then app.py runs around every page
    at.switch_page(page)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    if name is not None:
        at.sidebar.text_input(key="owner_name").set_value(name).run()
    return at


def close_jobs(*sessions: AppTest) -> None:
    for at in sessions:
        for key in ("job:train", "job:compare"):
            if key in at.session_state:
                at.session_state[key].close()


def errors_and_exceptions(at: AppTest) -> tuple[list, list]:
    return [e.value for e in at.error], list(at.exception)


@pytest.fixture(scope="module")
def valid_parts() -> tuple[dict, dict[str, torch.Tensor]]:
    folder = Path(tempfile.mkdtemp())
    path = tiny_run().save(folder / "valid.safetensors")
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()[META_KEY]), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 -- not iterable


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_every_page_renders_beside_a_folder_of_broken_checkpoints(valid_parts, data):
    """Generated broken files (metadata and tensors), a dangling link and one good run: each page renders,
    and on the Checkpoints page every file can be chosen, each broken one showing as a message."""
    meta, tensors = valid_parts
    root = Path(tempfile.mkdtemp())
    runs, pretrained = root / "runs", root / "pretrained"
    runs.mkdir(), pretrained.mkdir()
    write(runs / "good.safetensors", meta, tensors)
    for i in range(data.draw(st.integers(3, 6), label="files")):
        place = data.draw(st.sampled_from(places(meta)), label="place")
        bad = mutated(meta, place, "replace", data.draw(JSON_VALUES | EXTREMES, label="value"))
        write(runs / f"meta-{i}.safetensors", bad, tensors)
    name = data.draw(st.sampled_from(sorted(tensors)), label="tensor")
    write(runs / "nan.safetensors", meta, {**tensors, name: tensors[name].float() * math.nan})
    (runs / "truncated.safetensors").write_bytes((runs / "good.safetensors").read_bytes()[:300])
    (runs / "dangling.safetensors").symlink_to(root / "gone.safetensors")
    saved = {k: os.environ.get(k) for k in ("IWAVB_RUNS_DIR", "IWAVB_PRETRAINED_DIR")}
    os.environ.update(IWAVB_RUNS_DIR=str(runs), IWAVB_PRETRAINED_DIR=str(pretrained))
    try:
        for page in PAGES:
            at = session(page)
            assert not at.exception, (page, at.exception)
        at = session("pages/checkpoints.py")
        for option in at.selectbox(key="file").options:
            at.selectbox(key="file").set_value(option).run()
            assert not at.exception, (option, at.exception)
        close_jobs(at)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_a_broken_file_is_one_row_that_says_why(folders, valid_parts):
    _, runs = folders
    meta, tensors = valid_parts
    write(runs / "good.safetensors", meta, tensors)
    write(
        runs / "nan.safetensors",
        meta,
        {**tensors, "model.decoder.0.weight": tensors["model.decoder.0.weight"] * math.nan},
    )
    at = session("pages/checkpoints.py")
    assert not at.exception
    table = at.dataframe[0].value
    rows = {row["file"]: row for _, row in table.iterrows()}
    assert "NaN or infinite" in rows["nan.safetensors"]["problem"] and rows["good.safetensors"]["problem"] == ""
    assert at.selectbox(key="file").value == "run/good.safetensors"  # a usable one is chosen first
    at.selectbox(key="file").set_value("run/nan.safetensors").run()
    assert any("cannot be evaluated or trained further" in e for e in errors_and_exceptions(at)[0])
    assert not any(b.label == "Open on the Train page" for b in at.button)


def test_a_delete_never_touches_another_file_than_the_one_confirmed(folders):
    """Two tabs of one student (one name): tab B deletes the run that tab A shows; A's Delete then says the run
    is gone, and the run A's page now shows by default is still there."""
    _, runs = folders
    alice = owner_tag("name", "alice")
    first = tiny_run().save(runs / "first.safetensors", owner=alice)
    second = tiny_run().save(runs / "second.safetensors", owner=alice)
    a, b = session("pages/checkpoints.py", "alice"), session("pages/checkpoints.py", "Alice")
    for at in (a, b):
        at.selectbox(key="file").set_value("run/first.safetensors").run()
        assert at.button(key="delete:first.safetensors")  # the owner may delete it
    b.button(key="delete:first.safetensors").click().run()
    assert not first.exists() and any("Deleted first.safetensors" in s.value for s in b.success)
    a.button(key="delete:first.safetensors").click().run()
    assert not a.exception
    assert any("first.safetensors is no longer there" in e for e in errors_and_exceptions(a)[0])
    assert second.exists()


def test_others_can_load_a_run_but_not_delete_it(folders):
    _, runs = folders
    tiny_run().save(runs / "ada.safetensors", owner=owner_tag("name", "ada"))
    at = session("pages/checkpoints.py", "bob")
    at.selectbox(key="file").set_value("run/ada.safetensors").run()
    assert not any(b.key == "delete:ada.safetensors" for b in at.button)
    assert any("you can load it, not delete it" in c.value for c in at.caption)
    assert any(b.label == "Open on the Train page" for b in at.button)


def test_two_sessions_saving_the_same_settings_keep_a_file_each(folders):
    _, runs = folders
    sessions = [session("pages/train.py"), session("pages/train.py")]
    try:
        for at in sessions:
            at.sidebar.selectbox(key="method").set_value("vae")
            at.sidebar.number_input(key="steps").set_value(20).run()
            next(b for b in at.button if b.label == "Start").click().run()
            assert at.session_state["job:train"].join(120)
            at.run()
        for at in sessions:
            next(b for b in at.button if b.label == "Save checkpoint").click().run()
            assert at.success and not at.exception
        names = sorted(p.name for p in runs.iterdir())
        assert names == ["toy-vae-k1-l2-mlp-s0-2.safetensors", "toy-vae-k1-l2-mlp-s0.safetensors"]
    finally:
        close_jobs(*sessions)


@pytest.mark.parametrize(
    "page,query,key,value,notice",
    [
        ("pages/compare.py", {"k": "abc"}, "k", 10, "ignored k=abc from the link: K for IWAE and IWAVB is a whole"),
        ("pages/compare.py", {"k": "500"}, "k", 10, "ignored k=500 from the link: K for IWAE and IWAVB is a whole"),
        ("pages/train.py", {"method": "vae"}, "method", "vae", None),
        ("pages/train.py", {"method": "Iwae"}, "method", "iwae", None),
        ("pages/train.py", {"data": "MNIST", "steps": "250"}, "steps", 250, None),
        (
            "pages/train.py",
            {"method": "gan"},
            "method",
            "iwavb",
            "ignored method=gan from the link: method is one of VAE",
        ),
        ("pages/train.py", {"steps": "-4"}, "steps", 1_000, "ignored steps=-4 from the link: steps is a whole number"),
        ("pages/posteriors.py", {"point": "1e9"}, "point", 0, "ignored point=1e9 from the link: test point is a whole"),
        ("pages/checkpoints.py", {"file": "run/gone.safetensors"}, None, None, "ignored file=run/gone.safetensors"),
    ],
)
def test_a_link_setting_that_does_not_fit_is_a_notice(folders, page, query, key, value, notice):
    if page == "pages/checkpoints.py":
        tiny_run().save(folders[1] / "here.safetensors")
    at = session(page, query=query)
    assert not at.exception
    if key is not None:
        widget = next(w for w in [*at.sidebar.selectbox, *at.sidebar.number_input, *at.sidebar.slider] if w.key == key)
        assert widget.value == value
    captions = [c.value for c in at.caption]
    if notice is None:
        assert not any("from the link" in c for c in captions), captions
    else:
        assert any(notice in c for c in captions), captions
        at.run()
        assert any(notice in c.value for c in at.caption)  # still there on the next run, until the setting is changed


def test_streamlits_error_details_are_hidden_in_the_shipped_configuration():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"
