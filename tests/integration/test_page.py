"""The try-it page in a real browser (headless Chromium) on the real Serve app, over the demo's store.

The module builds what ``coldstart demo --serve`` builds — the demo's catalog (English and Chinese products)
embedded by the Ray Data job with the packaged MiniLM, the app started by ``pipelines.serve_local.start`` with
``jobs.demo.demo_app_args`` — under a route prefix, so the page's relative URLs are checked too. The browser's
answers are compared with the API's own answers to the same requests.

``COLDSTART_PAGE_SCREENSHOT=docs/page.png python -m pytest tests/integration/test_page.py`` regenerates the
screenshot in the docs. Skipped, with the reason, where Chromium is not installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import io
import json
import re
import socket
import time
from types import SimpleNamespace

import httpx
import pytest

from tests.fixtures.browser import chromium_missing, save_screenshot, start_chromium

MISSING = chromium_missing()
pytestmark = [pytest.mark.ray, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]

ROUTE = "/try"
WAIT_S = 30  # for one answer in the browser; a shared 2-core machine can be slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def demo_app(ray_local, tmp_path_factory):
    """The demo's store served at ``http://127.0.0.1:<port>/try/``; deleted with Serve at the end of the module."""
    from ray import serve

    from jobs.demo import demo_app_args, run_demo
    from pipelines.serve_local import start

    workdir = tmp_path_factory.mktemp("demo")
    run_demo(workdir, out=io.StringIO())
    try:
        url = start(demo_app_args(workdir), port=_free_port(), name="page", route_prefix=ROUTE)
        client = httpx.Client(base_url=url, timeout=60, trust_env=False)
        yield SimpleNamespace(url=url, client=client, health=client.get("healthz").json())
        client.close()
    finally:
        serve.shutdown()


@pytest.fixture(scope="module")
def browser(demo_app, tmp_path_factory):
    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


def _api(demo_app, **body) -> dict:
    response = demo_app.client.post("recommend", json={"k": 10, **body})
    assert response.status_code == 200, response.text
    return response.json()


def _wait(browser, condition, what: str):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, WAIT_S, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
                         ).until(condition, message=f"waited {WAIT_S} s for {what}")


def _shown(browser) -> list[tuple[str, str]]:
    """(item id, title) of the results on the page, best first."""
    return [(i, title) for i, title, _ in _shown_scored(browser)]


def _shown_scored(browser) -> list[tuple[str, str, float]]:
    """(item id, title, the score as printed) of the results on the page, best first."""
    from selenium.webdriver.common.by import By

    out = []
    for button in browser.find_elements(By.CSS_SELECTOR, "#results button.result"):
        sub = button.find_element(By.CLASS_NAME, "sub").text
        score = re.search(r"score (-?\d+\.\d{3})$", sub)
        out.append((button.get_attribute("data-item-id"), button.find_element(By.CLASS_NAME, "title").text,
                    float(score.group(1)) if score else float("nan")))
    return out


def _settled(browser) -> bool:
    return browser.find_element("id", "answer").get_attribute("aria-busy") is None


def _answer_shown(browser, expected: dict):
    """Wait until the page shows exactly ``expected``'s items and scores (the API's answer to the same request:
    the scores differ when the clicks were sent in another order, even where the ranking does not)."""
    from selenium.common.exceptions import TimeoutException

    want = [(i["item_id"], i["title"], i["score"]) for i in expected["items"]]

    def same(browser) -> bool:
        shown = _shown_scored(browser) if _settled(browser) else []
        return len(shown) == len(want) and all(
            (i, t) == (wi, wt) and abs(s - ws) <= 6e-4 for (i, t, s), (wi, wt, ws) in zip(shown, want))

    try:
        _wait(browser, same, "the API's answer")
    except TimeoutException:
        pytest.fail(f"after {WAIT_S} s the page shows {_shown_scored(browser)} (error box: "
                    f"{_text(browser, 'error-text')!r}), the API answers {want}")


def _text(browser, element_id: str) -> str:
    return browser.find_element("id", element_id).text


def _clicks_shown(browser) -> list[str]:
    return [li.get_attribute("data-item-id") for li in browser.find_elements("css selector", "#clicks li")]


def _stored(browser) -> dict:
    return json.loads(browser.execute_script("return sessionStorage.getItem('coldstart.new-user')") or "null")


def _severe_console_errors(browser) -> list[str]:
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


@pytest.mark.timeout(600)
def test_a_new_user_searches_clicks_and_starts_over(demo_app, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    started = time.monotonic()
    version = demo_app.health["index_version"]
    browser.get(demo_app.url)
    _wait(browser, lambda b: version in _text(b, "index-status"), "the index version in the header")
    assert _text(browser, "index-status") == f"Index version {version} · {demo_app.health['items']} products"
    assert _text(browser, "clicks-empty").startswith("None yet")

    # a query, typed and sent with Enter: the page shows what the API answers, "Nike鞋" above "Adidas鞋"
    browser.find_element(By.ID, "query").send_keys("Nike", Keys.ENTER)
    first = _api(demo_app, query="Nike")
    _answer_shown(browser, first)
    titles = [title for _, title in _shown(browser)]
    assert "Nike鞋" in titles and "Adidas鞋" not in titles[: titles.index("Nike鞋")], titles
    assert all("Nike" in t for t in titles[:5]), titles
    assert _text(browser, "answer-version") == version == first["index_version"]
    signals = [s.find_element(By.TAG_NAME, "strong").text for s in browser.find_elements(By.CSS_SELECTOR, "#signals li")]
    assert signals == first["signals"] == ["dense", "bm25"]
    assert re.fullmatch(r"\d+\.\d ms \(encode \d+\.\d ms, retrieve \d+\.\d ms\).*", _text(browser, "service-ms"))
    assert re.fullmatch(r"\d+\.\d ms", _text(browser, "round-trip-ms"))
    assert "10 products for “Nike”" in _text(browser, "results-summary")

    # a click on the second result: it joins the clicks, leaves the results, and the answer is the API's for
    # the query plus that click
    clicked_id, clicked_title = _shown(browser)[1]
    browser.find_element(By.CSS_SELECTOR, f'#results button[data-item-id="{clicked_id}"]').click()
    second = _api(demo_app, query="Nike", clicks=[clicked_id])
    _answer_shown(browser, second)
    assert clicked_id not in [i for i, _ in _shown(browser)]
    assert _clicks_shown(browser) == [clicked_id]
    assert _text(browser, "clicks").startswith(clicked_title)

    # a second click, from the keyboard (results are buttons): clicks stay oldest first
    next_id, _ = _shown(browser)[2]
    browser.find_element(By.CSS_SELECTOR, f'#results button[data-item-id="{next_id}"]').send_keys(Keys.ENTER)
    third = _api(demo_app, query="Nike", clicks=[clicked_id, next_id])
    _answer_shown(browser, third)
    assert _clicks_shown(browser) == [clicked_id, next_id]
    assert "2 clicks" in _text(browser, "results-summary")
    screenshot = save_screenshot(browser, tmp_path / "page.png")
    assert screenshot.stat().st_size > 10_000

    # the clicks live in this tab only: a reload keeps them and asks again
    assert [c["item_id"] for c in _stored(browser)["clicks"]] == [clicked_id, next_id]
    browser.refresh()
    _answer_shown(browser, third)
    assert browser.find_element(By.ID, "query").get_attribute("value") == "Nike"
    assert _severe_console_errors(browser) == []

    # start over: no clicks, no query, no results, nothing stored
    browser.find_element(By.ID, "reset").click()
    _wait(browser, lambda b: not _shown(b) and not _clicks_shown(b), "an empty page after 'start over'")
    assert browser.find_element(By.ID, "query").get_attribute("value") == ""
    assert _stored(browser) == {"query": "", "clicks": []}
    assert "new user again" in _text(browser, "results-summary")

    # from a fresh start: a query, a click, then the query emptied — the answer for the click alone
    query = browser.find_element(By.ID, "query")
    query.send_keys("chair", Keys.ENTER)
    chairs = _api(demo_app, query="chair")
    _answer_shown(browser, chairs)
    chair_id = chairs["items"][0]["item_id"]
    browser.find_element(By.CSS_SELECTOR, f'#results button[data-item-id="{chair_id}"]').click()
    _answer_shown(browser, _api(demo_app, query="chair", clicks=[chair_id]))
    query.clear()
    query.send_keys(Keys.ENTER)
    _answer_shown(browser, _api(demo_app, clicks=[chair_id]))
    assert _clicks_shown(browser) == [chair_id]
    assert "for 1 click." in _text(browser, "results-summary")

    # the service's 422 is shown, not swallowed (a query over the schema's 4096 characters)
    browser.execute_script("document.getElementById('query').value = 'x'.repeat(5000)")
    query.send_keys(Keys.ENTER)
    _wait(browser, lambda b: b.find_element(By.ID, "error").is_displayed(), "the error box")
    error = _text(browser, "error-text")
    assert error.startswith("422") and "query" in error, error
    print(f"browser flow: {time.monotonic() - started:.1f} s")


@pytest.mark.timeout(120)
def test_the_page_and_its_assets_are_served_outside_the_api_schema(demo_app):
    client = demo_app.client
    page = client.get("")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f'<base href="{ROUTE}/">' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    script = client.get("static/page.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    missing = client.get("static/schema.py")
    assert missing.status_code == 404 and "no page asset" in missing.json()["error"]
    paths = client.get("openapi.json").json()["paths"]
    assert "/recommend" in paths and "/" not in paths and not [p for p in paths if p.startswith("/static")]
