"""The report in a real browser: the system's Chromium, headless, through chromedriver. The page
of the committed results loads with no console error and no request but its own file, a
header click reorders the rows, and a file that failed a check is shown apart with its reason.
Without Chromium and chromedriver (apt-get install chromium chromium-driver) these tests skip."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from segbench.cli import app

RESULTS = Path(__file__).parents[1] / "docs" / "results"
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (the dev group) missing")
pytestmark = pytest.mark.skipif(
    not (BROWSER and DRIVER),
    reason="no Chromium with chromedriver: apt-get install chromium chromium-driver",
)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    found = CliRunner().invoke(app, ["report", str(RESULTS), "-o", str(out)])
    assert found.exit_code == 0, found.output
    return out


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1600"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def test_the_page_loads_with_no_console_error_and_no_request(page, browser):
    browser.get(page.as_uri())
    assert browser.title == "segbench report"
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert errors == []
    requests = [
        json.loads(e["message"])["message"]["params"]["request"]["url"]
        for e in browser.get_log("performance")
        if '"Network.requestWillBeSent"' in e["message"]
    ]
    assert requests == [page.as_uri()]


def _column(browser, header: str) -> list[float]:
    table = browser.find_element("css selector", "table.sortable")
    heads = [th.text.strip() for th in table.find_elements("css selector", "thead th")]
    index = heads.index(header) + 1
    cells = table.find_elements(
        "css selector", f"tbody tr td:nth-child({index}), tbody tr th:nth-child({index})"
    )
    return [float(c.get_attribute("data-sort")) for c in cells]


def test_a_header_click_reorders_the_rows(page, browser):
    browser.get(page.as_uri())
    table = browser.find_element("css selector", "table.sortable")
    button = table.find_element("xpath", ".//th[starts-with(., 'images/s')]/button")
    before = _column(browser, button.text.strip())
    button.click()
    ascending = _column(browser, button.text.strip())
    assert ascending == sorted(before) and ascending != before
    button.click()
    assert _column(browser, button.text.strip()) == sorted(before, reverse=True)
    th = table.find_element("xpath", ".//th[starts-with(., 'images/s')]")
    assert th.get_attribute("aria-sort") == "descending"


def test_a_file_failing_a_check_is_shown_apart_with_its_reason(page, browser):
    browser.get(page.as_uri())
    apart = browser.find_element("id", "apart")
    assert "segbench-smoke-cpu-20261130T045811Z.json" in apart.text
    assert "steps: 4 timed steps: too few for any verdict" in apart.text
    ranked = browser.find_elements("css selector", "section[id^=set] table.sortable")
    assert all("smoke" not in t.text for t in ranked)


def test_the_page_fits_a_360_pixel_screen(tmp_path, browser):
    # Under a long folder name: the page repeats a file's path in its warnings, and an unbroken
    # path once made a 360-px page 404 px wide.
    deep = tmp_path / ("a-folder-with-a-long-name-" * 3) / "results"
    shutil.copytree(RESULTS, deep)
    page = tmp_path / "report.html"
    found = CliRunner().invoke(app, ["report", str(deep), "-o", str(page)])
    assert found.exit_code == 0, found.output
    assert str(deep) in page.read_text()
    browser.set_window_size(360, 800)
    browser.get(page.as_uri())
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= browser.execute_script("return window.innerWidth")
    browser.set_window_size(1280, 1600)
