"""The HTML report as an engineer sees it: opened in a real browser.

One real sweep against the Linux stack (the passive open, which passes, and a
made-up MUST that Linux violates) writes a report; headless Chromium, driven
by Selenium through Debian's chromedriver, then loads its pages, works the
filters, follows a matrix cell to its case page and collects every script
error on the way.

Needs `apt-get install chromium chromium-driver` (./run test installs them).
A missing browser fails the test rather than skipping it, so that a green CI
proves the report was checked in a browser.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

pytestmark = pytest.mark.lab  # every test here builds a lab or runs a sweep

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Exactly these, so that the browser neither reaches out (there is no
# network here) nor needs a sandbox root cannot have.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync")
WINDOW = (1400, 1000)
# The width a case page must fit without scrolling sideways (issue 17).
NARROW = 1280
# Links out of the report that are references, never loaded: the RFCs.
REFERENCES = ("https://www.rfc-editor.org/rfc/",)

# Every script error of every page: the collector is installed before any
# page's own script runs, so an error while the page loads is caught too.
ERROR_COLLECTOR = ("window.__errors=[];"
                   "addEventListener('error',e=>__errors.push(String(e.message)));"
                   "addEventListener('unhandledrejection',e=>__errors.push(String(e.reason)))")

# The four ways a pcap file can begin: microsecond or nanosecond timestamps,
# in either byte order.
PCAP_MAGICS = {bytes.fromhex(m) for m in ("d4c3b2a1", "a1b2c3d4", "4d3cb2a1", "a1b23c4d")}


@pytest.fixture(scope="module")
def swept(report_sweep):
    """The shared real sweep (tests/conftest.py): it must have found the failure."""
    result = report_sweep["result"]
    assert result.returncode == 1, (f"expected exit status 1 (non-conformant), got "
                                    f"{result.returncode}\n{result.stdout}\n{result.stderr}")
    return report_sweep


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium with the script-error collector installed."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: the report is checked in a real browser; "
                    f"apt-get install chromium chromium-driver (./run test does)", pytrace=False)
    try:
        from selenium import webdriver
    except ImportError:
        pytest.fail("selenium missing: .venv/bin/pip install selenium "
                    "(it is in the project's test extra)", pytrace=False)
    options = webdriver.ChromeOptions()
    # Both paths explicit: Selenium Manager must not try to download a browser.
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)),
                              options=options)
    try:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": ERROR_COLLECTOR})
        yield driver
    finally:
        driver.quit()


def script_errors(driver) -> list[str]:
    """The page's script errors and the console's SEVERE messages since the last call.

    Nothing is ignored: on file:// Chromium requests no favicon, and the
    report loads nothing from the network, so any SEVERE entry is a fault."""
    errors = list(driver.execute_script("return window.__errors || []"))
    errors += [f"console: {e['message']}" for e in driver.get_log("browser")
               if e["level"] == "SEVERE"]
    return errors


def broken_links(driver) -> list[str]:
    """Links of the current page to a file that does not exist, or to an
    anchor the page does not have."""
    broken = []
    here = urlparse(driver.current_url).path
    for href in driver.execute_script("return Array.from(document.links, a => a.href)"):
        url = urlparse(href)
        if href.startswith(REFERENCES):
            continue
        if url.scheme != "file":
            broken.append(f"{href} (not a file of the report)")
        elif not Path(unquote(url.path)).exists():
            broken.append(f"{href} (no such file)")
        elif url.fragment and url.path == here and not driver.execute_script(
                "return document.getElementById(arguments[0]) !== null", unquote(url.fragment)):
            broken.append(f"{href} (no element with that id)")
    return broken


def screenshot(driver, path: Path, below=None) -> Path:
    """The whole page, or down to the bottom of the element `below`, as PNG."""
    import base64
    driver.execute_script("window.scrollTo(0, 0)")   # else the sticky nav is drawn mid-page
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics["cssContentSize"]
    height = size["height"]
    if below is not None:
        height = min(height, driver.execute_script(
            "const r = arguments[0].getBoundingClientRect(); return r.bottom + scrollY + 16",
            below))
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": height, "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def load(driver, path: Path) -> None:
    driver.get(path.as_uri())
    assert driver.execute_script("return document.readyState") == "complete"


def test_report_in_browser_filters_and_leads_to_the_failure(swept, browser, tmp_path):
    """The index loads without script errors, names the stack, shows a PASS row and a
    FAIL row; its filters hide and count rows; the FAIL cell leads to a case page with
    expected and actual, the ladder, the state timeline and a real capture."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    report, driver = swept["report"], browser
    n_cases = len(swept["passing"]) + 1
    load(driver, report / "index.html")
    assert script_errors(driver) == []
    assert "TCP conformance report" in driver.title
    assert "linux" in driver.find_element(By.ID, "stacks").text
    assert broken_links(driver) == []

    # The matrix: the passive open passes over both families, the pretend MUST fails.
    def cells(case):
        row = driver.find_element(By.CSS_SELECTOR, f'#matrix tr[id="case-{case}"]')
        return {Path(a.get_attribute("href")).name: a.find_element(By.XPATH, "..")
                for a in row.find_elements(By.CSS_SELECTOR, "td.cell a")}

    passing = cells("handshake.passive-open")
    assert {name: td.get_attribute("data-status") for name, td in passing.items()} == {
        "handshake.passive-open-ipv4.html": "pass", "handshake.passive-open-ipv6.html": "pass"}
    assert all(td.text == "PASS" for td in passing.values())
    failing = cells("t.must-fails")
    assert [td.get_attribute("data-status") for td in failing.values()] == ["fail"]
    count = driver.find_element(By.ID, "matrix-count")
    assert count.text == f"{n_cases} of {n_cases} cases shown"

    # Filters: unchecking PASS leaves the failure alone; a state only the
    # passive open reaches leaves nothing once PASS is hidden.
    form = driver.find_element(By.ID, "filters")
    pass_box = form.find_element(By.CSS_SELECTOR, 'input[name=verdict][value="pass"]')
    pass_box.click()
    shown = [r.get_attribute("id") for r in driver.find_elements(By.CSS_SELECTOR, "#matrix tbody tr")
             if r.is_displayed()]
    assert shown == ["case-t.must-fails"]
    assert count.text == f"1 of {n_cases} cases shown"
    state = form.find_element(By.NAME, "state")
    # Only the states the cases are about are offered.
    assert "TIME-WAIT" not in [o.text for o in Select(state).options]
    # Chosen by typing, as a user does with the keyboard: the browser then fires
    # input and change as for a mouse choice (Selenium's Select fires change only).
    state.send_keys("SYN-RECEIVED")
    assert not any(r.is_displayed() for r in driver.find_elements(By.CSS_SELECTOR, "#matrix tbody tr"))
    assert count.text == f"0 of {n_cases} cases shown"
    pass_box.click()
    assert count.text == f"1 of {n_cases} cases shown"     # the passive open reaches SYN-RECEIVED
    state.send_keys("all")
    assert count.text == f"{n_cases} of {n_cases} cases shown"
    search = form.find_element(By.NAME, "text")
    search.send_keys("challenge")
    assert count.text == f"1 of {n_cases} cases shown"
    search.clear()
    driver.execute_script("arguments[0].dispatchEvent(new Event('input', {bubbles: true}))", search)
    assert count.text == f"{n_cases} of {n_cases} cases shown"

    # The compliance summary: the RFCs' totals, and their sections on request.
    summary_rows = driver.find_elements(By.CSS_SELECTOR, "#compliance tbody tr")
    totals = [r for r in summary_rows if "total" in r.get_attribute("class")]
    assert totals and all(r.is_displayed() == (r in totals) for r in summary_rows)
    assert "RFC 9293" in totals[0].text and "MUST" in totals[0].text
    driver.find_element(By.CSS_SELECTOR, '#summary-filters input[name=sections]').click()
    assert all(r.is_displayed() for r in summary_rows)

    # The requirement index: "not checked yet" shows only the unchecked ones.
    req_rows = driver.find_elements(By.CSS_SELECTOR, "#requirements tbody tr")
    unchecked = [r for r in req_rows if r.get_attribute("data-coverage") == "unchecked"]
    assert unchecked and len(unchecked) < len(req_rows)
    req_count = driver.find_element(By.ID, "req-count")
    assert req_count.text == f"{len(req_rows)} of {len(req_rows)} requirements shown"
    driver.find_element(By.CSS_SELECTOR, '#req-filters input[name=which][value="unchecked"]').click()
    visible = driver.execute_script(
        "return Array.from(document.querySelectorAll('#requirements tbody tr'))"
        ".filter(r => !r.hidden).map(r => r.dataset.coverage)")
    assert visible and set(visible) == {"unchecked"} and len(visible) == len(unchecked)
    assert req_count.text == f"{len(unchecked)} of {len(req_rows)} requirements shown"
    driver.find_element(By.CSS_SELECTOR, '#req-filters input[name=which][value="all"]').click()
    assert script_errors(driver) == []
    screenshot(driver, tmp_path / "report-index.png", below=driver.find_element(By.ID, "matrix"))

    # The FAIL cell leads to the case page.
    next(iter(failing.values())).find_element(By.TAG_NAME, "a").click()
    assert driver.execute_script("return document.readyState") == "complete"
    assert Path(urlparse(driver.current_url).path) == report / "cases/linux/t.must-fails-ipv4.html"
    assert script_errors(driver) == []
    assert driver.find_element(By.ID, "status").text == "FAIL"
    assert driver.find_element(By.ID, "expected").text.strip()
    assert driver.find_element(By.ID, "actual").text.strip()
    ladder = driver.find_element(By.CSS_SELECTOR, "#ladder svg.ladder")
    arrows = ladder.find_elements(By.CSS_SELECTOR, "g.seg")
    assert len(arrows) >= 3
    out_texts = [g.text for g in ladder.find_elements(By.CSS_SELECTOR, "g.seg.out")]
    in_texts = [g.text for g in ladder.find_elements(By.CSS_SELECTOR, "g.seg.in")]
    assert any(t.startswith("RST") for t in out_texts), out_texts          # the tester's RST
    assert any(t.startswith("ACK") for t in in_texts), in_texts            # Linux's challenge ACK
    assert driver.find_element(By.ID, "timeline").is_displayed()
    pcap = Path(unquote(urlparse(driver.find_element(By.ID, "pcap").get_attribute("href")).path))
    assert pcap.is_file(), pcap
    assert pcap.read_bytes()[:4] in PCAP_MAGICS, pcap.read_bytes()[:4].hex()
    assert broken_links(driver) == []
    screenshot(driver, tmp_path / "report-case-fail.png")


def at_width(driver, width: int) -> None:
    """The viewport exactly `width` CSS pixels wide, as a 1280-pixel screen shows it."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False})


def overflow(driver) -> int:
    """How far the page is wider than its viewport (0: no horizontal scrolling)."""
    return driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth")


def test_the_report_is_a_document_to_hand_over(swept, browser, tmp_path):
    """At 1280 px: the index opens on the summary per stack (requirements met by
    level, in numbers and a bar) and names the device as --dut-name,
    --dut-version and --dut-notes gave it; the failing case's page gives the
    command that reruns just that case, marks the step that decided, links the
    RFC, shows absolute numbers on hover, and does not scroll sideways."""
    from selenium.webdriver.common.by import By

    report, driver = swept["report"], browser
    at_width(driver, NARROW)
    try:
        load(driver, report / "index.html")
        assert script_errors(driver) == [] and broken_links(driver) == []
        assert driver.execute_script("return window.innerWidth") == NARROW
        # The device, as the options named it (escaped: the name holds < and >).
        dut = driver.find_element(By.ID, "dut")
        assert dut.find_element(By.CSS_SELECTOR, ".dut-name").text == "Lab Linux <bench>"
        assert dut.find_element(By.CSS_SELECTOR, ".dut-version").text == "6.18-lab"
        assert "the kernel's own stack" in dut.find_element(By.CSS_SELECTOR, ".dut-notes").text
        assert "Lab Linux <bench>" in driver.find_element(By.TAG_NAME, "h1").text
        # The summary comes first: one card per stack, MUST with its numbers and a bar.
        summary = driver.find_element(By.ID, "executive")
        tops = driver.execute_script(
            "return ['executive', 'stacks', 'matrix'].map(i => "
            "document.getElementById(i).getBoundingClientRect().top)")
        assert tops == sorted(tops), tops
        card = driver.find_element(By.CSS_SELECTOR, '.card[data-target="linux"]')
        must = card.find_element(By.CSS_SELECTOR, 'tr[data-level="MUST"]')
        assert "NON-CONFORMANT" in card.text and summary.is_displayed()
        met, _, total = must.find_element(By.CSS_SELECTOR, "td.num").text.split()[:3]
        assert int(met) < int(total), must.text          # the pretend MUST is not met
        widths = driver.execute_script(
            "return Array.from(arguments[0].querySelectorAll('.bar span'), "
            "s => [s.className, s.getBoundingClientRect().width])", must)
        assert {name for name, _ in widths} >= {"b-met", "b-deviates"}, widths
        assert all(width > 0 for _, width in widths), widths
        # The suite and the selection are on the first page too.
        assert driver.find_element(By.ID, "cases-digest").text.startswith("sha256:")
        assert driver.find_element(By.ID, "selection").is_displayed()
        assert overflow(driver) <= 0
        index_png = screenshot(driver, tmp_path / "report-index.png",
                               below=driver.find_element(By.ID, "selection"))

        load(driver, report / "cases/linux/t.must-fails-ipv4.html")
        assert script_errors(driver) == [] and broken_links(driver) == []
        commands = {c.get_attribute("data-tool"): c.text
                    for c in driver.find_elements(By.CSS_SELECTOR, ".reproduce code.command")}
        assert commands["tcpconf"].startswith("tcpconf sweep ")
        assert "::t.must-fails[ipv4]' --target=linux --family=ipv4" in commands["tcpconf"]
        assert commands["pytest"].startswith("pytest -p conformance.plugin ")
        deciding = driver.find_element(By.ID, "deciding-step")
        assert "nothing for 200ms" in deciding.text and deciding.value_of_css_property(
            "background-color") != "rgba(0, 0, 0, 0)"
        rfc = driver.find_element(By.CSS_SELECTOR, "a.rfc")
        assert rfc.get_attribute("href") == "https://www.rfc-editor.org/rfc/rfc9293.html#section-3.6.1"
        # The silence the case expected, broken by Linux's ACK, and the ACK's absolute numbers.
        assert driver.find_elements(By.CSS_SELECTOR, "#ladder g.silence.broken")
        titles = driver.execute_script(
            "return Array.from(document.querySelectorAll('#ladder g.seg.in > title'), "
            "t => t.textContent)")
        assert any("absolute seq=" in t for t in titles), titles
        # The page fits 1280 px: the wire's panel scrolls inside its own box.
        assert driver.execute_script("return document.documentElement.scrollWidth") <= NARROW
        assert overflow(driver) <= 0
        case_png = screenshot(driver, tmp_path / "report-case-fail.png")
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    shots = os.environ.get("TCPCONF_SCREENSHOTS")
    if shots:      # docs/: TCPCONF_SCREENSHOTS=docs pytest tests/test_report_browser.py
        Path(shots).mkdir(parents=True, exist_ok=True)
        for png in (index_png, case_png):
            shutil.copy(png, Path(shots) / png.name)
