"""The study page end to end in a real headless Chromium: open an invite link (with its token),
vote, reload, resume, finish; the page without a token, or with a wrong one, stores nothing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness_ext.study.store import a_shown_first, open_study
from tests.study_helpers import running_server, write_pairs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)",
)


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _wait_text(driver, element_id: str, text: str) -> str:
    """Wait until the element shows `text` and return its whole text.

    A click on a form or a reload replaces the document, so an element found a moment ago can
    go stale (or be briefly missing) while the wait polls: both just mean "not yet".
    """
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def shown(d):
        current = d.find_element(By.ID, element_id).text
        return current if text in current else False

    return WebDriverWait(driver, 20, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
                         ).until(shown, f"#{element_id} never showed {text!r}")


def test_vote_reload_resume_and_finish_in_chromium(browser, tmp_path):
    from selenium.webdriver.common.by import By

    pairs, db = write_pairs(tmp_path / "pairs.jsonl", n=3), tmp_path / "study.sqlite"
    with running_server(db, pairs, seed=7) as srv:
        token = srv.store.invite("alice")
        browser.get(srv.url)  # no invite link: the page asks for id and token
        assert "not length" in browser.find_element(By.ID, "rule").text
        browser.find_element(By.ID, "annotator-input").send_keys("alice")
        browser.find_element(By.ID, "token-input").send_keys("not-the-token")
        browser.find_element(By.ID, "start").click()  # the form puts ?annotator=alice&token=... in the URL
        assert "invalid invite token" in _wait_text(browser, "error", "token")
        assert srv.store.votes() == []
        browser.get(srv.invite_url("alice", token))  # the link `harness-ext study invite` prints
        _wait_text(browser, "progress", "pair 1 of 3")
        assert "Instruction number 0" in browser.find_element(By.ID, "instruction").text
        left = browser.find_element(By.ID, "left").text
        assert left.startswith("LONG") == a_shown_first("p0", "alice", 7)
        shot = Path(os.environ.get("HARNESS_EXT_SCREENSHOT_DIR", tmp_path)) / "study_page.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000

        browser.find_element(By.ID, "vote-left").click()
        _wait_text(browser, "progress", "pair 2 of 3")
        browser.refresh()  # a reload resumes at the first unvoted pair
        _wait_text(browser, "progress", "pair 2 of 3")
        assert "Instruction number 1" in browser.find_element(By.ID, "instruction").text
        browser.find_element(By.ID, "vote-tie").click()
        _wait_text(browser, "progress", "pair 3 of 3")
        browser.find_element(By.ID, "vote-right").click()
        assert "All 3 pairs are done" in _wait_text(browser, "finished", "done")

    votes = {v.pair_id: v for v in open_study(db).votes()}
    assert set(votes) == {"p0", "p1", "p2"} and all(v.annotator == "alice" for v in votes.values())
    # 'left' on p0 means whichever response the seeded order put on the left.
    assert votes["p0"].choice == ("a" if a_shown_first("p0", "alice", 7) else "b")
    assert votes["p1"].choice == "tie"
    assert votes["p2"].choice == ("b" if a_shown_first("p2", "alice", 7) else "a")
