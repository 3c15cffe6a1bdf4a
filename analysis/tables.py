"""Tables of strings rendered as plain text, Markdown, CSV or HTML (one source for every format).

A table is a list of rows; each row is a dict from column name to an already formatted string,
all rows with the same keys in the same order.
"""

from __future__ import annotations

import csv
import html
import io

__all__ = ["Rows", "to_csv", "to_html", "to_markdown", "to_text"]

Rows = list[dict[str, str]]


def _columns(rows: Rows) -> list[str]:
    """Column names, from the first row."""
    return list(rows[0]) if rows else []


def to_text(rows: Rows) -> str:
    """Aligned plain text with a header rule, for terminals.

    Args:
        rows: the table.
    """
    columns = _columns(rows)
    if not columns:
        return "(no rows)"
    widths = [max(len(c), *(len(r[c]) for r in rows)) for c in columns]
    line = lambda cells: "  ".join(v.ljust(w) for v, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line("-" * w for w in widths), *(line(r[c] for c in columns) for r in rows)])


def to_markdown(rows: Rows) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells escaped).

    Args:
        rows: the table.
    """
    columns = _columns(rows)
    if not columns:
        return "_(no rows)_"
    cell = lambda v: v.replace("|", "\\|")  # noqa: E731
    head = "| " + " | ".join(map(cell, columns)) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(cell(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def to_csv(rows: Rows) -> str:
    """CSV with a header line.

    Args:
        rows: the table.
    """
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_columns(rows), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def to_html(rows: Rows, css_class: str = "table") -> str:
    """An HTML ``<table>`` with every value escaped.

    Args:
        rows: the table.
        css_class: class attribute of the table.
    """
    columns = _columns(rows)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(r[c])}</td>" for c in columns) + "</tr>\n" for r in rows)
    return f'<table class="{css_class}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>'
