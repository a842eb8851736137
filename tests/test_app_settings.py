"""Every setting a visitor makes on a page is kept when they move to another page (app/common.py KEPT_SETTINGS),
unless it is listed here with the reason it is not: a widget added without a thought for this would otherwise
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
                    elif f.name == "common.py" and name == "text_input":
                        continue                                   # server_path_input: its callers' keys, below
                    else:
                        raise AssertionError(f"{f.name}: a {name} whose key cannot be read: {ast.unparse(v)}")
            if name == "server_path_input" and len(node.args) >= 3 and isinstance(node.args[2], ast.Constant):
                yield f.name, node.args[2].value


def test_every_setting_is_kept_across_pages_or_says_why_not():
    from common import KEPT_SETTINGS
    keys = list(_value_widget_keys())
    assert ("embeddings.py", "emb_n") in keys and ("common.py", "img_source_") in keys   # the scan sees them
    missing = []
    for where, key in keys:
        if key in NOT_KEPT:
            continue
        if key.endswith("_"):                              # an f-string key: each of its forms must be kept
            if not any(k.startswith(key) for k in KEPT_SETTINGS):
                missing.append((where, key + "..."))
        elif key not in KEPT_SETTINGS:
            missing.append((where, key))
    assert not missing, f"settings forgotten when their page is left (add to KEPT_SETTINGS or NOT_KEPT): {missing}"
    stale = [k for k in KEPT_SETTINGS if not any(k == key or (key.endswith("_") and k.startswith(key))
                                                 for _, key in keys)]
    assert not stale, f"KEPT_SETTINGS names keys no widget has: {stale}"
