"""Benchmark: how fast the HTML report is written and loads with thousands of rows.

Prints, for a report of 5,000 records (625 cases x 4 targets x 2 families by
default): the time write_report takes, the size it leaves on disk, and, in
headless Chromium, the index's load (Navigation Timing: DOMContentLoaded and
load end, first contentful paint), one filter change (PASS unchecked, timed in
the page to forced layout and to the next frame) and a case page's load.
Then the same for an index of 5,000 matrix rows x 8 columns (40,000 records),
rendered alone: its 40,000 case pages are not what is measured.  For
comparison, pytest-html 4's self-contained report of 5,000 trivial tests,
which draws its table with JavaScript from embedded JSON: its load is timed
until its table holds every row.

The results are synthetic (plausible ladders of about ten entries, statuses
about 80% pass, requirements from the catalogue): this measures drawing and
loading the report, not a sweep, so no target is involved.  Each figure is the
median of --repeat runs.

Usage (from the repository root; needs chromium and chromium-driver):
    .venv/bin/python benchmarks/report.py [--records 5000] [--rows 5000] [--targets 4]
        [--families 2] [--repeat 3] [--no-pytest-html]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from conformance import results as results_mod  # noqa: E402
from conformance.report import page_name, write_report  # noqa: E402
from conformance.requirements import load_catalogue  # noqa: E402
from conformance.results import Results  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync")

TARGETS = ("linux", "lwip", "gvisor", "pytcp")
FAMILIES = ("ipv4", "ipv6")
GROUPS = ("handshake", "rst", "close", "fin", "acceptability", "options", "probes",
          "time-wait", "syn-queue", "client", "grid")
# About 80% pass; the rest spread over the other statuses.
STATUS_WEIGHTS = {"pass": 80, "fail": 6, "warn": 4, "info": 2, "known": 3, "fixed": 1,
                  "error": 2, "n/a": 2}
STARTS = ("LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2",
          "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT")


# --- synthetic results ---------------------------------------------------------------

def synthetic(cases: int, targets: int, families: int, seed: int = 1) -> Results:
    """`cases` cases, each with a record on every target and family."""
    rnd = random.Random(seed)
    names = list(TARGETS[:targets]) + [f"stack{i}" for i in range(len(TARGETS), targets)]
    fams = list(FAMILIES[:families])
    reqs = [e for e in load_catalogue().in_scope()]
    cited = rnd.sample(reqs, k=int(len(reqs) * 0.6))   # some stay unchecked, as now
    run = results_mod.run_info(
        command=["pytest", "cases", f"--target={','.join(names)}", "--report=reports"],
        targets={n: {"stack": f"{n} (synthetic)", "net.ipv4.tcp_sack": "1"} for n in names},
        families=fams, baselines={}, strict=False, started=results_mod.now(), duration=600.0)
    res = Results(run=run)
    for i in range(cases):
        group = GROUPS[i % len(GROUPS)]
        case_id = f"{group}.case-{i:05d}"
        start = rnd.choice(STARTS)
        picked = rnd.sample(cited, k=rnd.choice((1, 1, 2)))
        res.cases[case_id] = {
            "title": f"In {start}, a {rnd.choice(('SYN', 'RST', 'FIN', 'ACK'))} with an "
                     f"out-of-window sequence number draws the answer RFC 9293 asks for ({i})",
            "file": f"cases/{group}/case-{i:05d}.yaml", "line": 1, "role": "listener",
            "start": start, "marks": [], "description": "",
            "requirements": [{"id": r.id, "rfc": r.rfc, "section": r.section, "level": r.level,
                              "text": r.text} for r in picked],
            "script": [f"target: listener, starting in {start}", "--> RST seq=snd_nxt + 100",
                       "<-- ACK seq=snd_nxt ack=rcv_nxt, within 1s", "<-- nothing for 200ms"]}
        for target in names:
            for family in fams:
                status = rnd.choices(list(STATUS_WEIGHTS), weights=list(STATUS_WEIGHTS.values()))[0]
                res.records.append(_record(rnd, case_id, res.cases[case_id], target, family, status))
    return res


def _record(rnd, case_id, info, target, family, status) -> dict:
    req = info["requirements"][0]
    deviates = status in results_mod.DEVIATING
    return {
        "case": case_id, "target": target, "family": family,
        "nodeid": f"{info['file']}::{case_id}[{family}]", "status": status,
        "outcome": "fail" if deviates else status, "requirement": req["id"],
        "level": req["level"],
        "expected": "ACK seq=1 ack=1, within 1s" if deviates else "",
        "actual": "no segment within 1s" if deviates else "",
        "reason": "the target did not start" if status == "error" else
                  ("needs SO_LINGER" if status == "n/a" else ""),
        "at": 8 if deviates else None, "follows": "RFC 5961 section 3.2" if status == "info" else "",
        "unobserved": [],
        "baseline": ({"where": "baselines/x.yaml:3", "reason": "known since 2019"}
                     if status in ("known", "fixed") else None),
        "states": [info["start"], "ESTABLISHED"], "ladder": _ladder(rnd, info["start"]),
        "pcap": "", "duration": round(rnd.uniform(0.003, 0.3), 4), "waits": 0.2}


def _ladder(rnd, start: str) -> list[dict]:
    """About ten entries: a handshake, the case's own exchange, states and socket calls."""
    t = 0.0
    entries = []

    def add(kind, text, direction="", mark=""):
        nonlocal t
        entries.append({"t": round(t, 6), "kind": kind, "text": text, "direction": direction,
                        "mark": mark})
        t += rnd.uniform(0.00005, 0.002)

    add("app", f"listen on port {rnd.randint(10000, 60000)}, backlog 5 -> ok")
    add("segment", "SYN seq=0 win=65535 <mss 1460>", "out", "setup")
    add("segment", "SYN+ACK seq=0 ack=1 win=64240 <mss 1460>", "in", "setup")
    add("segment", "ACK seq=1 ack=1 win=65535", "out", "setup")
    add("app", "accept -> ok")
    add("state", "ESTABLISHED")
    add("segment", "RST seq=101 win=65535", "out")
    add("segment", "ACK seq=1 ack=1 win=64240", "in")
    t += rnd.choice((0.0, 0.2))            # sometimes a silence window, cut on the ladder
    add("segment", "FIN+ACK seq=1 ack=1 win=65535", "out")
    add("segment", "ACK seq=1 ack=2 win=64240", "in")
    add("state", start if start != "LISTEN" else "CLOSE-WAIT")
    return entries


# --- the browser ------------------------------------------------------------------------

def browser(profile: Path):
    from selenium import webdriver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM      # both explicit: Selenium Manager downloads nothing
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1400,1000")
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER),
                            options=options)


# The paint may come after the load event: wait for it (at most 5 s).
NAV_TIMING = """
const done = arguments[arguments.length - 1];
const n = performance.getEntriesByType('navigation')[0];
const give = fcp => done([n.domContentLoadedEventEnd, n.loadEventEnd, fcp]);
const timer = setTimeout(() => give(null), 5000);
new PerformanceObserver(list => {
  for (const e of list.getEntries()) {
    if (e.name === 'first-contentful-paint') { clearTimeout(timer); give(e.startTime); }
  }
}).observe({type: 'paint', buffered: true});
"""

# One filter change, timed in the page: to the forced layout, then to the next
# frame (the rAF callback runs before the paint, the timeout after it).
FILTER_CHANGE = """
const done = arguments[arguments.length - 1];
const box = document.querySelector(arguments[0]);
const t0 = performance.now();
if (arguments[1] === 'click') { box.click(); }
else { box.checked = false; box.dispatchEvent(new Event('input', {bubbles: true})); }
document.body.offsetHeight;
const t1 = performance.now();
requestAnimationFrame(() => setTimeout(() => done([t1 - t0, performance.now() - t0])));
"""

# pytest-html builds its table after the page's data is parsed: the time at
# which the table first holds every row, seen by a MutationObserver installed
# before the page's own script runs.
ROWS_PROBE = """
window.__rowsAt = null;
new MutationObserver((_, obs) => {
  const want = Number(sessionStorage.getItem('__want') || 0);
  if (want && document.querySelectorAll('#results-table tbody.results-table-row').length >= want) {
    window.__rowsAt = performance.now(); obs.disconnect();
  }
}).observe(document, {childList: true, subtree: true});
"""


def load_times(driver, url: str, repeat: int, rows_wanted: int = 0) -> dict:
    dcl, load, fcp, rows_at = [], [], [], []
    for _ in range(repeat):
        driver.get("about:blank")
        driver.get(url)
        d, l, f = driver.execute_async_script(NAV_TIMING)
        dcl.append(d)
        load.append(l)
        fcp.append(f if f is not None else float("nan"))
        if rows_wanted:
            deadline = time.time() + 60
            while driver.execute_script("return window.__rowsAt") is None:
                if time.time() > deadline:
                    raise RuntimeError(f"{url}: the table never held {rows_wanted} rows")
                time.sleep(0.05)
            rows_at.append(driver.execute_script("return window.__rowsAt"))
    out = {"dcl": statistics.median(dcl), "load": statistics.median(load),
           "fcp": statistics.median(fcp)}
    if rows_wanted:
        out["rows"] = statistics.median(rows_at)
    return out


def filter_times(driver, url: str, selector: str, how: str, repeat: int) -> tuple[float, float]:
    layout, frame = [], []
    for _ in range(repeat):
        driver.get("about:blank")
        driver.get(url)
        a, b = driver.execute_async_script(FILTER_CHANGE, selector, how)
        layout.append(a)
        frame.append(b)
    return statistics.median(layout), statistics.median(frame)


# --- pytest-html for comparison -----------------------------------------------------------

def pytest_html_report(tmp: Path, tests: int) -> tuple[Path, float, float]:
    """pytest-html's self-contained report of `tests` trivial tests, run outside
    the repository (so neither its conftest nor the conformance plugin loads).
    Returns the report and the run's wall time without and with --html."""
    work = tmp / "pytest-html"
    work.mkdir()
    (work / "test_many.py").write_text(
        "import pytest\n\n\n"
        f"@pytest.mark.parametrize('n', range({tests}))\n"
        "def test_trivial(n):\n    assert n >= 0\n")
    report = work / "report.html"
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
            "test_many.py"]
    walls = []
    for extra in ([], [f"--html={report}", "--self-contained-html"]):
        t0 = time.perf_counter()
        done = subprocess.run(base + extra, cwd=work, capture_output=True, text=True, timeout=600)
        walls.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise RuntimeError(f"pytest-html run failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return report, walls[0], walls[1]


# --- figures ------------------------------------------------------------------------------

def du(path: Path) -> tuple[int, int]:
    """Bytes and files under `path`."""
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000,
                        help="records of the whole report: cases x targets x families (default "
                             "5000); also the number of pytest-html's tests")
    parser.add_argument("--rows", type=int, default=5000,
                        help="matrix rows (cases) of the index rendered alone (default 5000)")
    parser.add_argument("--targets", type=int, default=4, help="targets (default 4)")
    parser.add_argument("--families", type=int, default=2, choices=(1, 2),
                        help="address families (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (default 3)")
    parser.add_argument("--no-pytest-html", action="store_true", help="skip the comparison")
    args = parser.parse_args()
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            sys.exit(f"{path} missing: apt-get install chromium chromium-driver")

    started = time.perf_counter()
    cols = args.targets * args.families
    cases = max(1, args.records // cols)
    ours = '#filters input[name=verdict][value="pass"]'
    rows = []          # (what, write s, index bytes, total bytes, files, load, filter)
    tmp = Path(tempfile.mkdtemp(prefix="tcpconf-report-bench-"))
    driver = None
    try:
        driver = browser(tmp / "chromium-profile")
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": ROWS_PROBE})

        # The whole report: index and a page per record.
        small = synthetic(cases, args.targets, args.families)
        writes = []
        for i in range(args.repeat):
            t0 = time.perf_counter()
            write_report(tmp / f"full{i}", small)
            writes.append(time.perf_counter() - t0)
        full = tmp / "full0"
        total, files = du(full)
        index = (full / "index.html").as_uri()
        rows.append((f"report, {len(small.records):,} records ({cases:,} cases x {cols} columns)",
                     statistics.median(writes), (full / "index.html").stat().st_size, total, files,
                     load_times(driver, index, args.repeat),
                     filter_times(driver, index, ours, "input", args.repeat)))
        failing = next(r for r in small.records if r["status"] == "fail")
        page = full / page_name(failing["target"], failing["case"], failing["family"])
        rows.append(("one case page (FAIL, 11-entry ladder)", None, page.stat().st_size, None, 1,
                     load_times(driver, page.as_uri(), args.repeat), None))

        # The index alone, rows x every column.
        big = synthetic(args.rows, args.targets, args.families, seed=2)
        renders = []
        for i in range(args.repeat):
            t0 = time.perf_counter()
            write_report(tmp / f"alone{i}", big, case_pages=False)
            renders.append(time.perf_counter() - t0)
        alone = tmp / "alone0"
        index = (alone / "index.html").as_uri()
        rows.append((f"index alone, {args.rows:,} rows x {cols} columns "
                     f"({len(big.records):,} records)", statistics.median(renders),
                     (alone / "index.html").stat().st_size, None, 1,
                     load_times(driver, index, args.repeat),
                     filter_times(driver, index, ours, "input", args.repeat)))

        # pytest-html 4, the same number of tests as records.
        if not args.no_pytest_html:
            report, bare, with_html = pytest_html_report(tmp, args.records)
            # The probe reads how many rows to wait for from sessionStorage,
            # which file:// pages share.
            driver.get(report.as_uri())
            driver.execute_script(f"sessionStorage.setItem('__want', '{args.records}')")
            rows.append((f"pytest-html 4, {args.records:,} tests, self-contained",
                         with_html - bare, report.stat().st_size, None, 1,
                         load_times(driver, report.as_uri(), args.repeat,
                                    rows_wanted=args.records),
                         filter_times(driver, report.as_uri(), 'input[data-test-result="passed"]',
                                      "click", args.repeat)))
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"TCP conformance report benchmark: synthetic results, headless Chromium "
          f"{CHROMIUM}, median of {args.repeat} runs\n")
    print(f"{'':52} {'write':>7} {'index':>8} {'all':>8} {'DCL':>7} {'load':>7} {'FCP':>7} "
          f"{'rows':>7} {'filter':>7} {'+frame':>7}")
    print(f"{'':52} {'s':>7} {'MB':>8} {'MB':>8} {'ms':>7} {'ms':>7} {'ms':>7} {'ms':>7} "
          f"{'ms':>7} {'ms':>7}")
    for what, write, index_bytes, total, files, load, change in rows:
        def f(value, fmt):
            return format(value, fmt) if value is not None else "-"
        print(f"{what:52} {f(write, '7.2f'):>7} {index_bytes / 1e6:8.2f} "
              f"{f(total and total / 1e6, '8.1f'):>8} {load['dcl']:7.0f} {load['load']:7.0f} "
              f"{load['fcp']:7.0f} {f(load.get('rows'), '7.0f'):>7} "
              f"{f(change and change[0], '7.1f'):>7} {f(change and change[1], '7.1f'):>7}")
    print()
    print("write: write_report (index, case pages, css, js); for the index alone")
    print("       write_report(..., case_pages=False);")
    print("       for pytest-html the run's wall time with --html minus without it")
    print("DCL, load: Navigation Timing domContentLoadedEventEnd, loadEventEnd; FCP: first")
    print("       contentful paint; rows: pytest-html's table holds every row (built by script)")
    print("filter: PASS unchecked, in-page time to forced layout; +frame: to after the next frame")
    print(f"the {len(small.records):,}-record report is {rows[0][4]:,} files (index, a page per "
          f"record, css, js); all MB counts them all")
    if not args.no_pytest_html:
        print(f"pytest run of {args.records:,} trivial tests: {bare:.2f} s bare, "
              f"{with_html:.2f} s with --html")
    print(f"whole benchmark: {time.perf_counter() - started:.0f} s")
    print(f"reproduce: .venv/bin/python benchmarks/report.py --records {args.records} "
          f"--rows {args.rows} --targets {args.targets} --families {args.families} "
          f"--repeat {args.repeat}{' --no-pytest-html' if args.no_pytest_html else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
