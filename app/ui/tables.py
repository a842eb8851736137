"""Small tables of text as plain HTML, not ``st.table``.

``st.table`` sends its rows as an Arrow table, and a browser tab that meets one first loads and compiles Arrow's
reader (about 0.9 MB of JavaScript: 0.3-0.5 s of CPU per tab, measured in a fresh chromium). In a class ten tabs
open pages at once on the same cores (bench/class_load.py), so a page's tables of a few rows of strings are drawn
as an HTML table instead (styled like Streamlit's, CSS in ``ui.session``)."""
from __future__ import annotations

import html
from typing import Mapping, Sequence

import streamlit as st

TESTID = "mae-table"


def table_html(columns: Mapping[str, Sequence], testid: str = TESTID) -> str:
    """``columns`` (a column's heading to its cells, all as long) as an HTML table; a column headed "" is the
    rows' headings. Cells are text (escaped)."""
    heads = list(columns)
    lengths = {len(columns[h]) for h in heads}
    if len(lengths) > 1:
        raise ValueError(f"the columns differ in length: {sorted(lengths)}")
    n = lengths.pop() if lengths else 0

    def cell(head: str, value) -> str:
        tag = "th scope='row'" if head == "" else "td"
        return f"<{tag}>{html.escape(str(value))}</{tag.split()[0]}>"
    head_row = "".join(f"<th scope='col'>{html.escape(h)}</th>" for h in heads)
    body = "".join("<tr>" + "".join(cell(h, columns[h][i]) for h in heads) + "</tr>" for i in range(n))
    return (f"<div class='mae-table-wrap' data-testid='{html.escape(testid)}'><table class='mae-table'>"
            f"<thead><tr>{head_row}</tr></thead><tbody>{body}</tbody></table></div>")


def table(columns: Mapping[str, Sequence], testid: str = TESTID) -> None:
    """Draw ``columns`` as a table (``table_html``)."""
    st.html(table_html(columns, testid))
