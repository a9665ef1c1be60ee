"""Playwright for Python driving Debian's Chromium, for the ``browser`` tests.

CI runs on a clean machine, so the set-up installs Debian's ``chromium`` package when
``/usr/bin/chromium`` is missing (as root, with apt-get) and fails with a clear message when it
cannot. A Korean font (``fonts-nanum``) is installed the same way when none is present, so the
screenshots saved under ``test-artifacts/screenshots/`` are readable; the tests themselves do
not depend on it. Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).parents[2] / "test-artifacts" / "screenshots"
_KOREAN_FONT_GLOBS = ("/usr/share/fonts/**/*Nanum*", "/usr/share/fonts/**/*CJK*")


def _apt_install(*packages: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    update = subprocess.run(
        ["apt-get", "update"], env=env, capture_output=True, text=True, check=False
    )
    if update.returncode != 0:
        return update
    return subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", *packages],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _has_korean_font() -> bool:
    return any(glob.glob(pattern, recursive=True) for pattern in _KOREAN_FONT_GLOBS)


def ensure_chromium() -> Path:
    """Debian's Chromium, installed first if missing; fails the test when that is impossible."""
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    can_install = is_root and shutil.which("apt-get") is not None
    if not CHROMIUM.exists():
        if not can_install:
            pytest.fail(
                f"{CHROMIUM} is missing and this user cannot install it: run "
                "`apt-get install chromium fonts-nanum` as root (Debian's package; "
                "`playwright install` is not used)",
                pytrace=False,
            )
        done = _apt_install("chromium", "fonts-nanum")
        if done.returncode != 0 or not CHROMIUM.exists():
            pytest.fail(
                f"installing chromium with apt-get failed:\n{done.stderr[-2000:]}", pytrace=False
            )
    if can_install and not _has_korean_font():
        _apt_install("fonts-nanum")  # Best effort: only the screenshots need it.
    return CHROMIUM


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium for one test module."""
    executable = ensure_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def new_page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh context (no cookies from other tests); script errors fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert errors == [], f"uncaught script errors: {errors}"


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as a test artifact; returns its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / (re.sub(r"[^a-z0-9_-]+", "-", name.lower()) + ".png")
    page.screenshot(path=str(path), full_page=True)
    return path
