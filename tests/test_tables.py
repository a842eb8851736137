"""ui.tables: the pages' small tables as plain HTML (no Arrow reader for a browser tab to load)."""
import pytest


def test_a_table_is_plain_html_that_reads_back_as_its_columns():
    from conftest import read_tables
    from ui.tables import table_html
    cols = {"": ["this model", "raw pixels"], "kNN accuracy": ["81.2%", "<b>77%</b> & more"], "n": [1, 2]}
    markup = table_html(cols)
    assert "<b>" not in markup and "&lt;b&gt;77%&lt;/b&gt; &amp; more" in markup   # text, never markup
    assert "<th scope='row'>raw pixels</th>" in markup and "data-testid='mae-table'" in markup
    assert read_tables("<p>before</p>" + markup + markup) == [{**cols, "n": ["1", "2"]}] * 2
    assert read_tables(table_html({"a": []})) == [{"a": []}]
    # a number column right-aligned, an interval on one line, a command not broken at its hyphens; no heading row
    markup = table_html({"": ["full"], "accuracy": ["92.2% [91.7%, 92.7%]"], "how": ["x --probe-every 2 --out -1"]},
                        header=False)
    assert "<td class='num'>92.2% [91.7%,\u00a092.7%]</td>" in markup and "<thead>" not in markup
    assert "<td>x <span class='mae-nb'>--probe-every</span> 2 <span class='mae-nb'>--out</span> -1</td>" in markup
    with pytest.raises(ValueError, match=r"the columns differ in length: \[1, 2\]"):
        table_html({"a": [1], "b": [1, 2]})
