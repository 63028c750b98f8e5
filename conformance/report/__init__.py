"""The matrix report: cases as rows, stacks as columns (Autobahn|Testsuite's
layout), each cell a coloured verdict linking to that case's evidence for that
stack.

It is written from plain result records (one per case, family and target:
status, requirement, the alternative followed, the evidence HTML), so it does
not care whether the sweep ran in one process or in xdist workers.
"""

from __future__ import annotations

import html
from collections import Counter
from pathlib import Path

# Colour of each status, and its order in a target's totals.
COLOURS = {
    "pass": "#2e7d32", "fail": "#c62828", "warn": "#ef6c00", "info": "#1565c0",
    "known": "#757575", "fixed": "#6a1b9a", "error": "#212121", "n/a": "#9e9e9e",
}

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; }
th { background: #f4f4f4; position: sticky; top: 0; }
td.cell { text-align: center; }
td.cell a { color: white; text-decoration: none; display: block; }
td.id { font-family: monospace; white-space: nowrap; }
pre { font-size: 12px; background: #fafafa; padding: 0.5em; overflow-x: auto; }
"""


def page_name(record: dict) -> str:
    return f"cases/{record['target']}/{record['case']}-{record['family']}.html"


def write_matrix(path: Path, records: list[dict]) -> None:
    """matrix.html at `path`, and one evidence page per record beside it."""
    path = Path(path)
    root = path.parent
    columns = sorted({(r["target"], r["family"]) for r in records},
                     key=lambda c: (_order(records, c[0]), c[1]))
    by_case: dict[str, dict] = {}
    titles: dict[str, str] = {}
    for record in records:
        by_case.setdefault(record["case"], {})[(record["target"], record["family"])] = record
        titles[record["case"]] = record.get("title", "")
        _write_case_page(root / page_name(record), record)

    targets = list(dict.fromkeys(t for t, _ in columns))
    totals = {t: Counter(r["status"] for r in records if r["target"] == t) for t in targets}
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>TCP conformance "
           f"matrix</title><style>{_STYLE}</style></head><body>",
           "<h1>TCP conformance matrix</h1>", "<p>"]
    for target in targets:
        parts = ", ".join(f"{totals[target][s]} {s}" for s in COLOURS if totals[target][s])
        out.append(f"<b>{html.escape(target)}</b>: {parts}<br>")
    out.append("</p><table><tr><th>case</th><th>title</th>")
    out += [f"<th>{html.escape(t)}<br>{f}</th>" for t, f in columns]
    out.append("</tr>")
    for case in sorted(by_case, key=lambda c: (c.startswith("grid."), c)):
        out.append(f"<tr><td class='id'>{html.escape(case)}</td>"
                   f"<td>{html.escape(titles[case])}</td>")
        for column in columns:
            record = by_case[case].get(column)
            if record is None:
                out.append("<td></td>")
                continue
            status = record["status"]
            tip = html.escape(f"{record.get('requirement', '')} {record.get('follows', '')}")
            out.append(f"<td class='cell' style='background:{COLOURS.get(status, '#999')}' "
                       f"title='{tip}'><a href='{html.escape(page_name(record))}'>"
                       f"{html.escape(status.upper())}</a></td>")
        out.append("</tr>")
    out.append("</table></body></html>")
    root.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out), encoding="utf-8")


def _order(records: list[dict], target: str) -> int:
    """Targets in the order the sweep named them (first seen)."""
    return next(i for i, r in enumerate(records) if r["target"] == target)


def _write_case_page(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    status = record["status"]
    back = "../" * (len(Path(page_name(record)).parts) - 1) + "matrix.html"
    path.write_text(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>"
        f"{html.escape(record['case'])} on {html.escape(record['target'])}</title>"
        f"<style>{_STYLE}</style></head><body><p><a href='{back}'>matrix</a></p>"
        f"<h2>{html.escape(record['case'])} [{html.escape(record['family'])}] on "
        f"{html.escape(record['target'])}: <span style='color:{COLOURS.get(status, '#999')}'>"
        f"{html.escape(status.upper())}</span></h2>"
        f"{record.get('evidence', '')}</body></html>", encoding="utf-8")
