"""The headless Chromium every browser test drives (tests/browser/support.py)."""
import pytest
from playwright.sync_api import sync_playwright

from tests.browser.support import CHROMIUM, SHOTS


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: run `make browser` (Debian's chromium and fonts-noto-cjk)"
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()
