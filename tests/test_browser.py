"""End to end in a real headless Chromium (Debian's /usr/bin/chromium, driven by pytest-playwright).

Starts `streamlit run app.py` on a free port, trains on the toy data from the Train page, watches the
bound chart grow and the exact log p(x) drawn beside it, checks the URL and a second tab, and opens the
Posteriors page; a second server with the shipped checkpoints shows MNIST posteriors framed on their
mass. Screenshots go to test-artifacts/ (git-ignored) as evidence to look at; the assertions are on the
page's content and its figures' data, not on pixels.
Without Playwright or Chromium the tests skip, unless IWAVB_REQUIRE_BROWSER=1 (set by .ci/run): then they fail.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from app_folders import empty_folders
from conftest import REQUIRE_BROWSER, required, skip_unless_required

if required(REQUIRE_BROWSER):
    import playwright.sync_api as playwright_api  # CI: without the driver, this module fails to load
else:
    playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOAD_MS = 120_000  # the server's first script run imports torch, plotly and scikit-learn on a busy 2-core CPU
CHART = '[data-testid="stPlotlyChart"]'


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not Path(CHROMIUM).exists():
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)"
        skip_unless_required(reason, REQUIRE_BROWSER)
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1400, "height": 1000}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(folder: Path, pretrained: Path | None = None):
    """The app on a free port with an empty runs folder and `pretrained` (default: an empty one)."""
    env = {**os.environ, **empty_folders(folder), "IWAVB_THREADS": "1", "OMP_NUM_THREADS": "1"}
    if pretrained is not None:
        env["IWAVB_PRETRAINED_DIR"] = str(pretrained)
    port = free_port()
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            assert process.poll() is None, f"the server exited: {(folder / 'server.log').read_text()}"
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the server did not answer its health check within 60 s"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app with empty pretrained and runs folders; stopped at the end."""
    yield from serve(tmp_path_factory.mktemp("app"))


@pytest.fixture(scope="module")
def shipped_server(tmp_path_factory):
    """The app with the shipped checkpoints (pretrained/) and an empty runs folder."""
    yield from serve(tmp_path_factory.mktemp("shipped"), ROOT / "pretrained")


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.mouse.move(0, 0)  # no tooltip over the page
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def bound_points(page) -> int:
    """Points drawn in the first line of the live bound chart (inside the live-charts component's iframe)."""
    frame = next((f for f in page.frames if "iwavb_live_charts" in f.url), None)
    if frame is None:
        return 0
    return frame.evaluate("""() => {
        const line = document.querySelector('.js-plotly-plot path.js-line');
        return line ? (line.getAttribute('d').match(/L/g) || []).length + 1 : 0; }""")


def live_figures(page) -> list[dict]:
    """The live-charts component's figures as Plotly holds them: trace names and y values (decoded: the figures
    arrive with numpy arrays as base64 typed arrays), layout annotations."""
    frame = next((f for f in page.frames if "iwavb_live_charts" in f.url), None)
    if frame is None:
        return []
    return frame.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(p => ({
        names: p._fullData.map(t => t.name || ''),
        points: p._fullData.map(t => (t.y || []).length),  // decoded: data may hold y as base64 (bdata)
        annotations: (p.layout.annotations || []).map(a => a.text),
        title: p.layout.title && p.layout.title.text}))""")


def drawn_truth_points(page) -> int:
    """Points of the bound chart's exact log p(x) line, as drawn (0 before the first reading)."""
    for figure in live_figures(page):
        for name, points in zip(figure["names"], figure["points"]):
            if "exact log p(x)" in name:
                return points
    return 0


def wait_until(page, predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s:.0f} s"
        page.wait_for_timeout(250)


def no_exceptions(page) -> None:
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)


def test_train_watch_the_bound_grow_then_see_the_posterior(server, page, context):
    page.goto(f"{server}/train?method=AVB&steps=20000")  # settings from the URL, as a shared link would give
    expect(page.get_by_role("button", name="Start")).to_be_visible(timeout=LOAD_MS)
    expect(page.get_by_role("combobox", name="method")).to_have_value("AVB")
    page.get_by_role("button", name="Start").click()

    wait_until(page, lambda: bound_points(page) >= 2, 120, "the bound chart's first points")
    first = bound_points(page)
    wait_until(page, lambda: bound_points(page) > first + 2, 90, "the bound chart growing")
    expect(page.get_by_text("train objective (uses T)")).to_be_visible()
    # The truth beside the objective: the exact log p(x) of the four points, the landmarks, the named gap.
    wait_until(page, lambda: drawn_truth_points(page) >= 2, 120, "two readings of the exact log p(x)")
    bound_chart = live_figures(page)[0]
    assert any("best possible −1.386" in (a or "") for a in bound_chart["annotations"])
    assert any("posterior collapse −2.249" in (a or "") for a in bound_chart["annotations"])
    assert any(a and ("T's error" in a or "gap" in a) for a in bound_chart["annotations"])
    t_chart = "T's error at q's samples"
    wait_until(page, lambda: any(f["title"] == t_chart for f in live_figures(page)), 30, "T's error per toy point")
    expect(page.get_by_text("exact log p(x)").first).to_be_visible()
    no_exceptions(page)
    screenshot(page, "train-running")

    page.get_by_role("slider", name="latent size l").focus()  # a changed setting goes into the URL
    page.keyboard.press("ArrowRight")
    page.wait_for_url("**latent=4**", timeout=30_000)

    page.get_by_role("link", name="Posteriors").click()
    expect(page.get_by_role("heading", name="Posteriors")).to_be_visible(timeout=LOAD_MS)
    expect(page.locator(f"{CHART} .js-plotly-plot").nth(1)).to_be_visible(timeout=LOAD_MS)  # point, posterior
    expect(page.locator(f"{CHART} {POSTERIOR_IMAGE}").first).to_be_attached()  # the true posterior, drawn
    expect(page.get_by_text("effective sample size").first).to_be_visible()
    expect(page.get_by_text("Train:")).to_be_visible()  # the run goes on in the sidebar after the switch
    no_exceptions(page)
    screenshot(page, "posteriors")

    other_tab = context.new_page()  # a second tab is a second session: it does not see this run
    other_tab.goto(f"{server}/posteriors")
    expect(other_tab.get_by_text("No model with latent size 2")).to_be_visible(timeout=LOAD_MS)
    screenshot(other_tab, "posteriors-second-tab")
    other_tab.close()


def test_compare_names_the_winner(server, page):
    page.goto(f"{server}/compare?steps_each=60")
    start = page.get_by_role("button", name="Train the four, one after another (60 steps each)")
    expect(start).to_be_visible(timeout=LOAD_MS)
    start.click()
    expect(page.get_by_text("4 runs, finished")).to_be_visible(timeout=240_000)
    expect(page.get_by_text("What each change bought")).to_be_visible(timeout=LOAD_MS)
    expect(page.locator('[data-testid="stAlertContentSuccess"]')).to_contain_text("wins")
    no_exceptions(page)
    screenshot(page, "compare")


def test_home_renders_and_links_to_the_pages(server, page):
    page.goto(server)
    expect(page.get_by_role("heading", name="IWAVB Lab")).to_be_visible(timeout=LOAD_MS)
    expect(page.get_by_text("The 2 × 2 grid")).to_be_visible()
    for name in ("Train", "Compare", "Posteriors", "Checkpoints"):
        expect(page.get_by_role("link", name=name)).to_be_visible()
    no_exceptions(page)
    screenshot(page, "home")


# A layout image under a subplot's axes, where Plotly draws the posterior's PNG (layer "below").
POSTERIOR_IMAGE = ".layer-subplot .imagelayer image"


def posterior_frames(page) -> list[dict]:
    """Each drawn posterior figure's axis ranges and the box holding 99% of its posterior's mass (layout.meta)."""
    return page.evaluate(
        """(image) => [...document.querySelectorAll('.js-plotly-plot')]
        .filter(p => p.layout.meta && p.layout.meta.posterior_mass_99)
        .map(p => ({x: p._fullLayout.xaxis.range, y: p._fullLayout.yaxis.range, box: p.layout.meta.posterior_mass_99,
                    images: p.querySelectorAll(image).length}))""",
        POSTERIOR_IMAGE,
    )


def test_mnist_posteriors_are_framed_on_their_mass(shipped_server, page):
    """The shipped MNIST l = 2 models: all charts drawn, and each posterior plot's axes hold the box with 99% of
    the true posterior's mass, which spans at least a third of the axis (read from the figures)."""
    page.goto(f"{shipped_server}/posteriors?data=mnist&point=3")
    expect(page.get_by_role("heading", name="Posteriors")).to_be_visible(timeout=LOAD_MS)
    expect(page.locator(f"{CHART} .js-plotly-plot").nth(5)).to_be_visible(timeout=LOAD_MS)  # 6 charts with AVB's T
    wait_until(page, lambda: len(posterior_frames(page)) == 2, 60, "both posterior plots")
    for frame in posterior_frames(page):
        (x0, x1), (y0, y1), (b0, b1, c0, c1) = frame["x"], frame["y"], frame["box"]
        assert x0 <= b0 < b1 <= x1 and y0 <= c0 < c1 <= y1, frame
        assert max(b1 - b0, c1 - c0) >= (x1 - x0) / 3, frame
        assert frame["images"] == 1  # the posterior, drawn as one image
    expect(page.get_by_text("T's mean error")).to_be_visible()
    expect(page.get_by_text("zoom ×").first).to_be_visible()
    no_exceptions(page)
    screenshot(page, "posteriors-mnist")
