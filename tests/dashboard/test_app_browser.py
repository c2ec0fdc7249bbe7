"""End to end: the dashboard served by `streamlit run` on localhost, loaded in a real headless Chromium
(Debian's `chromium`, installed by scripts/test.sh) driven by Playwright. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from run_fixtures import make_finished_run, make_running_run

pytestmark = [pytest.mark.browser, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
APP = REPO / "apps" / "dashboard" / "src" / "dashboard" / "app.py"
ARTIFACTS = REPO / "tests" / "artifacts"
CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, data_dir: Path):
    root = tmp_path_factory.mktemp("runs")
    make_finished_run(root)
    make_running_run(root)
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(APP),
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
            "--",
            "--runs-dir",
            str(root),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "LATENTWIRE_RUNS": str(root)},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not come up: " + proc.stdout.read().decode()[-2000:])
    _ROOTS[url] = root
    yield url
    proc.terminate()
    proc.wait(timeout=20)


_ROOTS: dict[str, Path] = {}


def server_root(url: str) -> Path:
    """The runs folder a test server shows."""
    return _ROOTS[url]


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is not installed; scripts/test.sh installs Debian's chromium package")
    return path


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=_chromium(), args=CHROME_FLAGS[1:])
        yield b
        b.close()


def test_run_page_shows_metrics_table_and_plots(server: str, browser) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.goto(f"{server}/?view=Run&run=alpha")
    page.get_by_text("Run: alpha").wait_for(timeout=60_000)
    table = page.locator("table").first
    table.wait_for(timeout=60_000)
    text = table.inner_text()
    first = json.loads((server_root(server) / "alpha" / "eval" / "metrics.json").read_text())["results"][0]
    assert "token_budget" in text and "tiny-llama" in text and f"{first['value']:.3f}" in text
    page.locator(".vega-embed").first.wait_for(timeout=60_000)  # quality-vs-compression chart drawn
    page.wait_for_timeout(1500)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard-run.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    page.close()


def test_examples_page_shows_source_gold_and_outputs(server: str, browser) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.goto(f"{server}/?view=Examples&run=alpha")
    page.get_by_text("source text").wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"^output: ")).first.wait_for(timeout=60_000)  # rendered after the table
    page.wait_for_timeout(500)
    body = page.locator("section.main, [data-testid='stMain']").first.inner_text()
    preds = pd.read_parquet(server_root(server) / "alpha" / "eval" / "predictions.parquet")
    # the selected example's review, as the runner stored it
    assert any(src[:40] in body for src in preds["source"].unique())
    assert re.search(r"Gold: (negative|positive)", body)
    assert re.search(r"output: (negative|positive)", body)
    page.screenshot(path=str(ARTIFACTS / "dashboard-examples.png"), full_page=True)
    page.close()
