"""End to end in a real headless Chromium (Debian's /usr/bin/chromium, driven by pytest-playwright).

Starts `streamlit run app.py` on a free port, trains on the toy data from the Train page, watches the
bound chart grow, checks the URL and a second tab, and opens the Posteriors page. Screenshots go to
test-artifacts/ (git-ignored) as evidence to look at; the assertions are on the page's content.
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


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app on a free port, with empty pretrained and runs folders; stopped at the end."""
    folders = tmp_path_factory.mktemp("app")
    env = {**os.environ, **empty_folders(folders), "IWAVB_THREADS": "1", "OMP_NUM_THREADS": "1"}
    port = free_port()
    log = (folders / "server.log").open("w")
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
            assert process.poll() is None, f"the server exited: {(folders / 'server.log').read_text()}"
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
    no_exceptions(page)
    screenshot(page, "train-running")

    page.get_by_role("slider", name="latent size l").focus()  # a changed setting goes into the URL
    page.keyboard.press("ArrowRight")
    page.wait_for_url("**latent=4**", timeout=30_000)

    page.get_by_role("link", name="Posteriors").click()
    expect(page.get_by_role("heading", name="Posteriors")).to_be_visible(timeout=LOAD_MS)
    expect(page.locator(f"{CHART} .js-plotly-plot").nth(1)).to_be_visible(timeout=LOAD_MS)  # point, posterior
    expect(page.locator(".heatmaplayer").first).to_be_attached()  # the true posterior, drawn
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
