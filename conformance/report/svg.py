"""SVG elements as text, for the report's drawings: escaped for XML, styled
by presentation attributes only, coordinates to a tenth of a pixel."""

from __future__ import annotations

import html
import re

# Characters XML 1.0 does not allow at all, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def document(width, height, title: str, body: list[str], font_px: int) -> str:
    """A whole <svg> element: white ground, a <title>, monospace text."""
    content = "\n".join(body)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="ladder" role="img" '
            f'aria-label="{esc(title)}" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" style="max-width:100%;height:auto" '
            f'font-family="monospace" font-size="{font_px}">\n'
            f'<title>{esc(title)}</title>\n'
            f'<rect class="ground" width="{width}" height="{height}" fill="#ffffff"/>\n'
            f'{content}\n</svg>')


def text(x, y, text, cls=None, anchor=None, fill=None, weight=None, italic=False,
          size=None) -> str:
    attrs = [f'x="{n(x)}"', f'y="{n(y)}"']
    attrs += [f'class="{cls}"'] if cls else []
    attrs += [f'text-anchor="{anchor}"'] if anchor else []
    attrs += [f'fill="{fill}"'] if fill else []
    attrs += [f'font-weight="{weight}"'] if weight else []
    attrs += ['font-style="italic"'] if italic else []
    attrs += [f'font-size="{size}"'] if size else []
    return f'<text {" ".join(attrs)}>{esc(text)}</text>'


def line(x1, y1, x2, y2, cls, stroke, width, dash=None) -> str:
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    return (f'<line class="{cls}" x1="{n(x1)}" y1="{n(y1)}" x2="{n(x2)}" y2="{n(y2)}" '
            f'stroke="{stroke}" stroke-width="{width}"{dashed}/>')


def points(points) -> str:
    return " ".join(f"{n(x)},{n(y)}" for x, y in points)


def n(value: float) -> str:
    """A coordinate, to a tenth of a pixel, without a needless ".0"."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def esc(text: str) -> str:
    return html.escape(_NOT_XML.sub("\ufffd", text), quote=True)


def slug(mark: str) -> str:
    """A mark as a class name: "bad checksum" -> "bad-checksum"."""
    return re.sub(r"[^a-z0-9]+", "-", mark.lower()).strip("-") or "marked"
