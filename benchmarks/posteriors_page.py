"""How long the Posteriors page takes to draw all its charts after a change of test point, in headless Chromium.

    python -m benchmarks.posteriors_page --data mnist --points 1,2,3,4,5

Starts `streamlit run app.py` on a free port with the shipped checkpoints (pretrained/), opens the
Posteriors page, waits for it to draw, then sets the test point to each of `--points` in turn and times
from the change until the script run has ended and every chart on the page is drawn (Plotly's SVG present
and visible, no stale element left). Prints one line per change and the median. Needs Debian's Chromium
(CHROMIUM_PATH) and playwright (requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]

# True once Streamlit has finished its script run and every chart on the page is drawn.
ALL_DRAWN = """([expected, text]) => {
    if (document.querySelector('[data-testid="stStatusWidget"]')) return false;  // a script run is going on
    if (document.querySelector('[data-stale="true"]')) return false;  // an element of the previous run is left
    const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')];
    if (charts.length < expected) return false;
    if (!charts.some(c => c.textContent.includes(text))) return false;  // the new test point's chart is there
    return charts.every(c => {
        const plot = c.querySelector('.js-plotly-plot');
        const shown = getComputedStyle(c).visibility !== 'hidden';
        return plot && plot._fullLayout && shown && plot.querySelector('.main-svg');
    });
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(port: int, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`streamlit run app.py` on `port` (with `env` added to this process's environment), once it answers."""
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true"]
    command += ["--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    environment = {**os.environ, **(env or {})}
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                return process
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start: {log.read_text()}")
        time.sleep(0.2)


@contextlib.contextmanager
def app_in_browser(log: Path, env: dict[str, str] | None = None) -> Iterator[tuple[str, Any]]:
    """The app served on a free port and a headless Chromium: (the app's URL, the browser); both end with it."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    server = serve(port, log, env)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield f"http://127.0.0.1:{port}", browser
            browser.close()
    finally:
        server.terminate()
        server.wait(15)


def _wait_drawn(page, expected: int, point: int, timeout_s: float) -> float:
    """Seconds until the page shows test point `point` with all its charts drawn."""
    start = time.perf_counter()
    page.wait_for_function(ALL_DRAWN, arg=[expected, f"point {point}"], timeout=timeout_s * 1000, polling=50)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--points", default="1,2,3,4,5", help="test points to switch to, in turn")
    parser.add_argument("--charts", type=int, default=5, help="charts the page draws when done")
    parser.add_argument("--query", default="", help="more URL query settings, e.g. 'k=20'")
    parser.add_argument("--screenshot", default="", help="save a screenshot of the last state here")
    args = parser.parse_args(argv)
    with app_in_browser(Path("/tmp") / "posteriors-bench.log") as (url, browser):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        query = f"data={args.data}" + (f"&{args.query}" if args.query else "")
        started = time.perf_counter()
        page.goto(f"{url}/posteriors?{query}")
        page.get_by_role("heading", name="Posteriors").wait_for(timeout=120_000)
        _wait_drawn(page, args.charts, 0, 180)
        first = time.perf_counter() - started
        print(f"first load: {first:.2f} s (imports, checkpoints, first views)")
        box = page.get_by_label("test point")
        times = []
        for point in [int(p) for p in args.points.split(",")]:
            box.fill(str(point))
            t0 = time.perf_counter()
            box.press("Enter")
            _wait_drawn(page, args.charts, point, 120)
            seconds = time.perf_counter() - t0
            times.append(seconds)
            print(f"test point {point}: all charts drawn in {seconds:.2f} s")
        print(f"median over {len(times)} changes: {statistics.median(times):.2f} s")
        if args.screenshot:
            page.screenshot(path=args.screenshot, full_page=True)


if __name__ == "__main__":
    main()
