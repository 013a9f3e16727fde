"""Time to insight on the Train page: how soon after Start the reconstructions look like digits.

    python -m benchmarks.train_page_insight --query "data=mnist&method=VAE" --at 4,6,8,10,12

Starts `streamlit run app.py` on a free port (empty pretrained and runs folders), opens the Train page with
the settings in `--query` (others at their defaults), presses Start `--settle` seconds after it shows (a teacher
picking settings takes longer) and saves a screenshot of the page's pictures at each of `--at` seconds after the
click, printing the training step the page shows then. Whether
the reconstructions are recognisable is for a person to judge from the screenshots. Needs Debian's
Chromium (CHROMIUM_PATH) and playwright (requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

from benchmarks.posteriors_page import app_in_browser

# The text of every chart title in a frame (Plotly draws them in SVG; the live charts are in a component's iframe).
TITLES = "() => [...document.querySelectorAll('.gtitle')].map(t => t.textContent).join(' | ')"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--query", default="data=mnist&method=VAE", help="the Train page's URL settings")
    parser.add_argument("--at", default="4,6,8,10,12", help="seconds after Start at which to take screenshots")
    parser.add_argument("--out", default="test-artifacts/insight", help="folder of the screenshots")
    parser.add_argument(
        "--settle", type=float, default=1.0, help="seconds between the Start button showing and its click"
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    folders = Path(tempfile.mkdtemp(prefix="insight-"))
    env = {"IWAVB_PRETRAINED_DIR": str(folders / "pretrained"), "IWAVB_RUNS_DIR": str(folders / "runs")}
    for folder in env.values():
        Path(folder).mkdir()
    with app_in_browser(folders / "server.log", env) as (url, browser):
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.goto(f"{url}/train?{args.query}")
        start = page.get_by_role("button", name="Start")
        start.wait_for(timeout=120_000)
        page.wait_for_timeout(args.settle * 1000)
        start.click()
        clicked = time.perf_counter()
        for seconds in [float(s) for s in args.at.split(",")]:
            page.wait_for_timeout(max(0.0, clicked + seconds - time.perf_counter()) * 1000)
            shot = out / f"train-{seconds:g}s.png"
            page.screenshot(path=str(shot), full_page=True)
            step = re.search(r"· step ([\d,]+) of", page.locator("body").inner_text())  # the run's caption
            titles = " | ".join(frame.evaluate(TITLES) for frame in page.frames)  # the charts are in an iframe
            pictures = re.search(r"What the model does at step ([\d,]+)", titles)
            print(
                f"{seconds:5.1f} s after Start: training at {'step ' + step.group(1) if step else 'no step yet'}; "
                f"pictures {'of step ' + pictures.group(1) if pictures else 'not shown yet'} -> {shot}"
            )


if __name__ == "__main__":
    main()
