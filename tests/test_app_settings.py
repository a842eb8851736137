"""Every setting a visitor makes on a page is kept when they move to another page (each file registers its widgets'
keys with ``ui.session.keep``), unless it is listed here with the reason it is not: a widget added without a thought for this would otherwise
reset silently whenever its page is left."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VALUE_WIDGETS = {"selectbox", "slider", "number_input", "radio", "toggle", "checkbox", "segmented_control",
                 "text_input", "text_area", "select_slider", "multiselect", "pills", "color_picker", "date_input",
                 "time_input"}
NOT_KEPT = {
    "presenter", "scene_choice",                   # drawn by the entrypoint on every page: never forgotten
    "ov_heads", "ov_dec_heads", "ov_normpix",      # asked only while one file fails to load
    "att_block_", "att_head_",                     # bounded by the model's depth and heads
    "hist_",                                       # one per training run, on the Train page's history
}


def _value_widget_keys():
    """(file, key or f-string prefix) of every value widget with a key in the app's code."""
    for f in sorted((ROOT / "app").rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", None))
            for kw in node.keywords:
                if kw.arg == "key" and name in VALUE_WIDGETS:
                    v = kw.value
                    if isinstance(v, ast.Constant):
                        yield f.name, v.value
                    elif isinstance(v, ast.JoinedStr):
                        yield f.name, v.values[0].value            # the constant start of an f-string
                    elif f.name == "text.py" and name == "text_input":
                        continue                                   # server_path_input: its callers' keys, below
                    else:
                        raise AssertionError(f"{f.name}: a {name} whose key cannot be read: {ast.unparse(v)}")
            if name == "server_path_input" and len(node.args) >= 3 and isinstance(node.args[2], ast.Constant):
                yield f.name, node.args[2].value


def _registered():
    """file -> the keys its ``keep(...)`` calls register."""
    out = {}
    for f in sorted((ROOT / "app").rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "keep":
                out.setdefault(f.name, set()).update(a.value for a in node.args if isinstance(a, ast.Constant))
    return out


def test_every_setting_is_kept_across_pages_or_says_why_not():
    """Each file registers the keys of the widgets it draws itself (a new page touches no shared list)."""
    keys = list(_value_widget_keys())
    kept = _registered()
    assert ("embeddings.py", "emb_n") in keys and ("images.py", "img_source_") in keys   # the scan sees them
    missing = []
    for where, key in keys:
        if key in NOT_KEPT:
            continue
        mine = kept.get(where, set())
        if key.endswith("_"):                              # an f-string key: each of its forms must be kept
            if not any(k.startswith(key) for k in mine):
                missing.append((where, key + "..."))
        elif key not in mine:
            missing.append((where, key))
    assert not missing, f"settings forgotten when their page is left (keep() them in their file, or NOT_KEPT): {missing}"
    stale = [(f, k) for f, ks in kept.items() for k in ks
             if not any(w == f and (k == key or (key.endswith("_") and k.startswith(key))) for w, key in keys)]
    assert not stale, f"keep() names keys no widget of its file has: {stale}"


def test_a_registered_setting_survives_a_run_that_does_not_draw_it():
    """The mechanism itself: after every page has run once, main.py's write-back keeps a registered value."""
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=180)
    at.run()
    at.switch_page("views/embeddings.py").run()
    assert not at.exception
    at.session_state["emb_n"] = 500
    at.switch_page("views/reconstruct.py").run()
    at.switch_page("views/embeddings.py").run()
    assert not at.exception and at.session_state["emb_n"] == 500


def test_the_code_stays_small_enough_to_hold():
    """Issue 35's limits: no function over 80 lines anywhere in the library, the app or the benchmarks, and no
    app file over 300 lines (a page is a short script of one function per section)."""
    long = []
    for f in sorted([*(ROOT / "mae_core").rglob("*.py"), *(ROOT / "app").rglob("*.py"), *(ROOT / "bench").glob("*.py")]):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80:
                long.append(f"{f.relative_to(ROOT)}:{node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, long
    big = [f"{f.relative_to(ROOT)} ({n})" for f in (ROOT / "app").rglob("*.py")
           if (n := len(f.read_text().splitlines())) > 300]
    assert not big, big
    hacks = [f.name for f in (ROOT / "bench").glob("*.py") if "sys.path" in f.read_text()]
    assert not hacks, f"bench scripts that import through sys.path: {hacks}"
