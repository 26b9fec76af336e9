"""Real headless Chromium for the page tests (leaderboard site, run report): one way to open a page.

    with headless_page(path.as_uri()) as (page, requests, errors):
        assert page.locator("table").count() == 3 and not errors

Without playwright or Chromium the test is skipped locally and FAILS under CI (CI must run it:
.ci/setup-system.sh installs Chromium). `requests` lists every URL the page asked for, `errors`
every console error and uncaught exception.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("SDBENCH_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


def need(ok: bool, why: str) -> None:
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{why} (CI must run the browser test; see .ci/setup-system.sh)")
        pytest.skip(why)


@contextlib.contextmanager
def headless_page(url: str, width: int = 1300, height: int = 900) -> Iterator[tuple[Any, list[str], list[str]]]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "playwright is not installed (pip install -e .[dev])")
    need(Path(CHROMIUM).exists() or bool(shutil.which("chromium")), f"no Chromium at {CHROMIUM}")
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("request", lambda req: requests.append(req.url))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url, wait_until="load")
            yield page, requests, errors
        finally:
            browser.close()
