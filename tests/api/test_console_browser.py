"""The analyst console in a real browser (headless chromium + chromedriver, selenium).

The app runs on a real HTTP server (werkzeug, a free localhost port). Skipped with the reason when
chromium or chromedriver is missing, except under ``CI=true`` where that is a failure
(``scripts/install_test_tools.sh`` installs them).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator

import pytest
from conftest import make_config
from werkzeug.serving import make_server

from fraud_kedro.api import create_app

pytestmark = pytest.mark.slow
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(registry, state_db, held_out) -> Iterator[str]:
    app = create_app(make_config(registry, state_db))
    client = app.test_client()
    batch = [
        {"transaction_id": int(r.transaction_id), "timestamp": r.timestamp.isoformat(),
         "customer_id": int(r.customer_id), "terminal_id": int(r.terminal_id), "amount": float(r.amount)}
        for r in held_out.head(60).itertuples()
    ]  # fmt: skip
    assert client.post("/score", json={"transactions": batch}).status_code == 200
    httpd = make_server("127.0.0.1", _free_port(), app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(10)


@pytest.fixture
def browser(tmp_path) -> Iterator[object]:
    if not (shutil.which(CHROMIUM) and shutil.which(DRIVER)):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} or {DRIVER} missing under CI (scripts/install_test_tools.sh)")
        pytest.skip(f"{CHROMIUM} or {DRIVER} missing: run scripts/install_test_tools.sh")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_fraud_click_posts_feedback_and_the_case_leaves_the_queue(server, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{server}/console?k=5")
    cases = browser.find_elements(By.CSS_SELECTOR, "#queue .case")
    assert len(cases) == 5
    first = cases[0]
    tid = first.get_attribute("data-transaction-id")
    first.find_element(By.CSS_SELECTOR, "button.mark-fraud").click()
    WebDriverWait(browser, 20).until(ec.staleness_of(first))
    assert browser.find_element(By.ID, "queue-count").text == "4"
    browser.get(f"{server}/console?k=5")  # the label is stored: the case stays out after a reload
    queue = browser.find_elements(By.CSS_SELECTOR, "#queue .case")
    ids = [c.get_attribute("data-transaction-id") for c in queue]
    assert tid not in ids and len(ids) == 5
    # the scoring form's defaults score a transaction of a card with history
    browser.find_element(By.CSS_SELECTOR, "#score-form button").click()
    output = browser.find_element(By.ID, "score-output")
    WebDriverWait(browser, 20).until(lambda _: "fraud_probability" in output.text)
