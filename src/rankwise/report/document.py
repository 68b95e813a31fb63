"""One report, two renderings: a list of blocks written as ``report.md`` (figures as PNG files
beside it) and as a self-contained ``report.html`` (figures inlined as data URIs, no network).

The HTML carries a few lines of script that, once the page has loaded, mark every figure with
``data-rendered="yes"`` or ``"no"`` and count them on ``<body data-figures-rendered="k/n">``;
a figure that fails to decode is flagged on the page, and the test suite reads the count from
headless Chromium.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from rankwise.io import write_text


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str


@dataclass
class TableBlock:
    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    align_right: bool = True  # every column after the first


@dataclass
class Figure:
    caption: str
    file: str  # PNG relative to the report folder


Block = Union[Heading, Paragraph, TableBlock, Figure]


@dataclass
class Document:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> Document:
        self.blocks.extend(blocks)
        return self

    # ------------------------------------------------------------------ markdown
    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for b in self.blocks:
            if isinstance(b, Heading):
                out += ["#" * b.level + " " + b.text, ""]
            elif isinstance(b, Paragraph):
                out += [b.text, ""]
            elif isinstance(b, TableBlock):
                cell = lambda v: str(v).replace("|", "\\|").replace("\n", " ")  # noqa: E731
                out.append("| " + " | ".join(cell(h) for h in b.header) + " |")
                out.append("|---|" + ("---:|" if b.align_right else "---|") * (len(b.header) - 1))
                out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in b.rows]
                out.append("")
            else:
                out += [f"![{b.caption}]({b.file})", "", f"*{b.caption}*", ""]
        return "\n".join(out)

    # ---------------------------------------------------------------------- html
    def html(self, folder: Path) -> str:
        parts = [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(self.title)}</title>",
            "<style>" + _CSS + "</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
        ]
        for b in self.blocks:
            if isinstance(b, Heading):
                parts.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
            elif isinstance(b, Paragraph):
                parts.append(f"<p>{html.escape(b.text)}</p>")
            elif isinstance(b, TableBlock):
                head = "".join(f"<th>{html.escape(str(h))}</th>" for h in b.header)
                body = "".join(
                    "<tr>"
                    + "".join(
                        f"<td{' class=num' if (i and b.align_right) else ''}>{html.escape(str(v))}</td>"
                        for i, v in enumerate(row)
                    )
                    + "</tr>"
                    for row in b.rows
                )
                parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            else:
                data = base64.b64encode((folder / b.file).read_bytes()).decode("ascii")
                parts.append(
                    f'<figure><img alt="{html.escape(b.caption)}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{html.escape(b.caption)}</figcaption></figure>"
                )
        parts += ["<script>" + _CHECK + "</script>", "</body></html>"]
        return "\n".join(parts)

    def write(self, folder: str | Path, stem: str = "report") -> tuple[Path, Path]:
        """Write ``<stem>.md`` and ``<stem>.html`` into ``folder`` (atomically)."""
        folder = Path(folder)
        md, page = folder / f"{stem}.md", folder / f"{stem}.html"
        write_text(md, self.markdown())
        write_text(page, self.html(folder))
        return md, page


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{border:1px solid #ddd;padding:.3em .6em;vertical-align:top}
th{background:#f4f6f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1em 0}img{max-width:100%}figcaption{color:#555;font-size:.9em}
img[data-rendered=no]{outline:3px solid #c00}
"""

_CHECK = """
window.addEventListener('load', function () {
  var imgs = document.querySelectorAll('img'), ok = 0;
  imgs.forEach(function (img) {
    var good = img.complete && img.naturalWidth > 0;
    img.setAttribute('data-rendered', good ? 'yes' : 'no');
    if (good) { ok++; } else { img.insertAdjacentHTML('afterend', '<p style="color:#c00">figure failed to render</p>'); }
  });
  document.body.setAttribute('data-figures-rendered', ok + '/' + imgs.length);
});
"""
