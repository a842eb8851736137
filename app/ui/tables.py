"""Small tables of text as plain HTML, not ``st.table``.

``st.table`` sends its rows as an Arrow table, and a browser tab that meets one first loads and compiles Arrow's
reader (about 0.9 MB of JavaScript: 0.3-0.5 s of CPU per tab, measured in a fresh chromium). In a class ten tabs
open pages at once on the same cores (bench/class_load.py), so a page's tables of a few rows of strings are drawn
as an HTML table instead (styled like Streamlit's, CSS in ``ui.session``)."""
from __future__ import annotations

import html
import re
from typing import Mapping, Sequence

import streamlit as st

TESTID = "mae-table"
_NUMBER = re.compile(r"[-+]?\d[\d,.]*")             # a cell that starts with a number: its column is right-aligned
_BRACKETS = re.compile(r"\[[^\]]*\]")              # an interval "[88.5%, 89.8%]": never broken across lines
_HYPHENATED = re.compile(r"(?<!\S)(?=\S*-)(?=\S*[A-Za-z])\S+")   # "--probe-every", "--epochs": never broken at
                                                                  # a hyphen (copied as typed)


def _text(value) -> str:
    """A cell's text as HTML: escaped; an interval kept on one line; a hyphenated word not broken at its hyphen."""
    out = _BRACKETS.sub(lambda m: m.group(0).replace(" ", "\u00a0"), str(value))
    out = html.escape(out)
    return _HYPHENATED.sub(lambda m: f"<span class='mae-nb'>{m.group(0)}</span>", out)


def table_html(columns: Mapping[str, Sequence], testid: str = TESTID, header: bool = True) -> str:
    """``columns`` (a column's heading to its cells, all as long) as an HTML table; a column headed "" is the
    rows' headings, a column whose cells all start with a number is right-aligned. Cells are text (escaped).
    ``header=False``: no heading row (a list of facts and their values)."""
    heads = list(columns)
    lengths = {len(columns[h]) for h in heads}
    if len(lengths) > 1:
        raise ValueError(f"the columns differ in length: {sorted(lengths)}")
    n = lengths.pop() if lengths else 0
    num = {h: n > 0 and h != "" and all(_NUMBER.match(str(v)) for v in columns[h]) for h in heads}

    def cls(head: str) -> str:
        return " class='num'" if num[head] else ""

    def cell(head: str, value) -> str:
        tag = "th scope='row'" if head == "" else "td"
        return f"<{tag}{cls(head)}>{_text(value)}</{tag.split()[0]}>"
    head_row = "".join(f"<th scope='col'{cls(h)}>{html.escape(h)}</th>" for h in heads)
    body = "".join("<tr>" + "".join(cell(h, columns[h][i]) for h in heads) + "</tr>" for i in range(n))
    thead = f"<thead><tr>{head_row}</tr></thead>" if header else ""
    return (f"<div class='mae-table-wrap' data-testid='{html.escape(testid)}'><table class='mae-table'>"
            f"{thead}<tbody>{body}</tbody></table></div>")


def table(columns: Mapping[str, Sequence], testid: str = TESTID, header: bool = True) -> None:
    """Draw ``columns`` as a table (``table_html``)."""
    st.html(table_html(columns, testid, header))
