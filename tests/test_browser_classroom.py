"""The app on a classroom's screens: a 1024x768 projector and a 1280x800 laptop, sidebar open as it starts.
Every page is screenshot at 1024x768, 1280x800 and 1920x1080 into tests/screenshots/ (look at them)."""
import re

import pytest

from browser import SCREENSHOT_DIR, browser_page, wait_idle

pytestmark = pytest.mark.browser

SIZES = [(1024, 768), (1280, 800)]
PAGES = {"reconstruct": "", "ratios": "ratios", "embeddings": "embeddings", "train": "train"}

# Text that must be shown whole: metric values and labels, buttons, widget labels, the value in a closed select box,
# image captions. Three ways to be cut: content wider than its box, an ellipsis ("Thumbn…", whose box may be as
# wide as its visible text: the text's own width is measured), and a word of letters broken over two lines
# ("Ankl / e boot" under a small neighbour image). A break at a hyphen is typography, not a cut.
CUT_TEXT_JS = """
() => {
  const out = [];
  const sel = '[data-testid=stMetricValue], [data-testid=stMetricLabel], button, [data-testid=stWidgetLabel], ' +
              '[data-testid=stSelectbox] input, [data-testid=stImageCaption], [data-testid=stCaptionContainer]';
  for (const el of document.querySelectorAll(sel)) {
    for (const e of [el, ...el.querySelectorAll('*')]) {
      const r = e.getBoundingClientRect();
      const text = (e.tagName === 'INPUT' ? e.value : e.textContent).trim();
      if (e.clientWidth > 0 && r.width > 0 && e.scrollWidth > e.clientWidth + 1 && text)
        out.push(`${text.slice(0, 40)} (${e.scrollWidth} > ${e.clientWidth})`);
    }
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let n; (n = walker.nextNode());) {
      for (const m of n.data.matchAll(/[A-Za-z]+/g)) {
        const rg = document.createRange();
        rg.setStart(n, m.index);
        rg.setEnd(n, m.index + m[0].length);
        const tops = new Set([...rg.getClientRects()].filter(x => x.width > 0).map(x => Math.round(x.top)));
        if (tops.size > 1) out.push(`broken word: ${m[0]}`);
      }
    }
  }
  for (const e of document.querySelectorAll('[data-testid=stMain] *, [data-testid=stSidebar] *')) {
    if (!e.clientWidth || getComputedStyle(e).textOverflow !== 'ellipsis' || !e.textContent.trim()) continue;
    const rg = document.createRange();
    rg.selectNodeContents(e);
    if (rg.getBoundingClientRect().width > e.clientWidth + 0.5) out.push(`ellipsis: ${e.textContent.trim().slice(0, 40)}`);
  }
  return [...new Set(out)];
}
"""


def _open(page, url, path="", timeout=120):
    page.goto(url + "/" + path)
    page.wait_for_timeout(1200)
    wait_idle(page, timeout)
    page.wait_for_timeout(600)


def _hidden(page) -> int:
    return int(re.match(r"\s*(\d+)\s*/", page.locator('[data-testid="stMetricValue"]').first.inner_text()).group(1))


def _hidden_cells(page) -> list:
    return page.locator('[data-testid="mae-painter"] .mae-cell').evaluate_all(  # (pierces the shadow root)
        "cells => cells.flatMap((c, i) => c.classList.contains('hidden') ? [i] : [])")


def _painter_box(page):
    """The painter scrolled to the middle of the window (all of it on screen, to drag over), and its box."""
    painter = page.locator('[data-testid="mae-painter"]')
    painter.evaluate("e => e.scrollIntoView({block: 'center'})")
    page.wait_for_timeout(300)
    return painter.bounding_box()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_painter_fits_its_column_and_the_last_column_can_be_painted(server, size):
    w, h = size
    with browser_page(w, h) as page:
        _open(page, server)
        painter = page.locator('[data-testid="mae-painter"]')
        painter.scroll_into_view_if_needed()
        box = painter.bounding_box()
        col = painter.evaluate("""el => {  // the nearest column, across the component's shadow root
            for (let e = el; e; e = e.parentNode || e.host) {
                if (e.getAttribute && e.getAttribute('data-testid') === 'stColumn') {
                    const r = e.getBoundingClientRect(); return {x: r.x, width: r.width};
                }
            }
            return null; }""")
        assert abs(box["width"] - box["height"]) < 1.5                         # square cells
        assert col["x"] - 0.5 <= box["x"] and box["x"] + box["width"] <= col["x"] + col["width"] + 0.5
        assert box["x"] + box["width"] <= w                                    # inside the viewport
        assert box["width"] >= 240                                            # not shrunk to a stamp
        page.get_by_role("button", name="Clear").click()
        page.wait_for_function("() => document.body.innerText.includes('0 / 49')", timeout=20000)
        wait_idle(page)
        box = _painter_box(page)
        assert box["y"] >= 0 and box["y"] + box["height"] <= h
        cell = box["width"] / 7
        x = box["x"] + cell * 6.5                                              # the last column
        page.mouse.move(x, box["y"] + cell * 0.5)
        page.mouse.down()
        for k in range(1, 13):
            page.mouse.move(x, box["y"] + cell * (0.5 + 6 * k / 12))
        page.mouse.up()
        page.wait_for_function("() => document.body.innerText.includes('7 / 49')", timeout=20000)
        wait_idle(page)
        assert _hidden_cells(page) == [6, 13, 20, 27, 34, 41, 48]
        assert "Painted by hand: 7 of 49" in page.inner_text("body")


@pytest.mark.parametrize("size, present", [((1024, 768), ""), ((1024, 768), "?present=1"), ((1280, 800), ""),
                                           ((1280, 800), "?present=1")], ids=lambda v: str(v))
def test_no_page_cuts_a_number_or_a_label(server, size, present):
    """Seen at 1024x768 in presenter mode: 'Rando', 'Re…', 'U…', 'Hidden pat…', 'Thumbn…', 'Ankl/e boot'. Every
    page, with its attention and comparison sections open on Reconstruct (their controls were cut too)."""
    w, h = size
    with browser_page(w, h) as page:
        for name, path in PAGES.items():
            _open(page, server, path + present, timeout=240)
            if name == "reconstruct":
                page.get_by_text("Attention maps: what the transformer looks at").click()
                page.wait_for_timeout(800)
                wait_idle(page, 60)
            cut = page.evaluate(CUT_TEXT_JS)
            assert not cut, f"{name} at {w}x{h}{present}: {cut}"


def test_painted_mask_survives_the_slider_and_undo_redo_in_the_browser(server):
    with browser_page(1280, 800) as page:
        _open(page, server)
        page.get_by_role("button", name="Clear").click()
        page.wait_for_function("() => document.body.innerText.includes('0 / 49')", timeout=20000)
        wait_idle(page)
        box = _painter_box(page)
        cell = box["width"] / 7
        for c in (0, 1):                                                        # two strokes: two columns
            page.mouse.move(box["x"] + cell * (c + 0.5), box["y"] + cell * 0.5)
            page.mouse.down()
            page.mouse.move(box["x"] + cell * (c + 0.5), box["y"] + cell * 6.5, steps=8)
            page.mouse.up()
            page.wait_for_function(f"() => document.body.innerText.includes('{7 * (c + 1)} / 49')", timeout=20000)
            wait_idle(page)
        slider = page.locator('[data-testid="stSlider"] input[type=range]').first
        slider.focus()
        page.keyboard.press("ArrowRight")                                       # touch the ratio slider
        page.wait_for_timeout(800)
        wait_idle(page)
        assert _hidden(page) == 14 and "Painted by hand: 14 of 49" in page.inner_text("body")
        for _ in range(2):
            page.get_by_role("button", name="Undo", exact=True).click()
            wait_idle(page)
        assert _hidden(page) == 0
        page.get_by_role("button", name="Redo", exact=True).click()
        page.wait_for_function("() => document.body.innerText.includes('7 / 49')", timeout=20000)
        page.get_by_role("button", name="Generate", exact=True).click()
        page.wait_for_function("() => document.body.innerText.includes('Generated:')", timeout=20000)
        wait_idle(page)
        assert _hidden(page) == 49 - int(49 * (1 - 0.8) + 1e-9)


def test_keyboard_paints_without_a_mouse(server):
    with browser_page(1280, 800) as page:
        _open(page, server)
        page.get_by_role("button", name="Clear").click()
        page.wait_for_function("() => document.body.innerText.includes('0 / 49')", timeout=20000)
        wait_idle(page)
        page.locator('[data-testid="mae-painter"]').focus()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Space")                                             # row 1, column 2 = cell 9
        page.wait_for_function("() => document.body.innerText.includes('1 / 49')", timeout=20000)
        wait_idle(page)
        assert _hidden_cells(page) == [9]
        page.locator('[data-testid="mae-painter"]').focus()
        page.keyboard.press("End")
        page.keyboard.press("Enter")                                             # the last cell
        page.wait_for_function("() => document.body.innerText.includes('2 / 49')", timeout=20000)
        wait_idle(page)
        assert _hidden_cells(page) == [9, 48]


def test_presenter_mode_from_the_url_fits_the_lesson_on_a_laptop_screen(server):
    with browser_page(1280, 800) as page:
        _open(page, server, "?present=1")
        assert page.evaluate("() => getComputedStyle(document.documentElement).fontSize") == "19px"
        assert page.locator('[data-testid="stMainMenu"], [data-testid="stToolbarActions"]').evaluate_all(
            "els => els.every(e => getComputedStyle(e).display === 'none')")   # (the toolbar itself stays: it holds
        #                                                                     the control that reopens the sidebar)
        assert page.locator('[data-testid="stAppDeployButton"]').count() == 0 or page.locator(
            '[data-testid="stAppDeployButton"]').evaluate("e => getComputedStyle(e).display") == "none"
        # the mask controls, the painter and its buttons are on the first screen, without scrolling
        for loc in (page.get_by_text("Ratio to generate"), page.locator('[data-testid="mae-painter"]'),
                    page.get_by_role("button", name="Hide all")):
            b = loc.first.bounding_box()
            assert b and b["y"] >= 0 and b["y"] + b["height"] <= 800, loc
        page.screenshot(path=str(SCREENSHOT_DIR / "presenter_1280x800.png"))
        # the toggle is on, and switching it off drops the parameter and the large type
        page.get_by_text("Presenter mode").click()
        page.wait_for_timeout(800)
        wait_idle(page)
        assert "present=1" not in page.url
        assert page.evaluate("() => getComputedStyle(document.documentElement).fontSize") == "16px"


@pytest.mark.parametrize("size, present", [((1024, 768), ""), ((1024, 768), "?present=1"), ((1280, 800), ""),
                                           ((1920, 1080), "")], ids=lambda v: str(v))
def test_screenshots_of_every_page(server, size, present):
    """Not an assertion of looks: the pictures to look at before calling a page done (and no error on any page)."""
    w, h = size
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    with browser_page(w, h) as page:
        for name, path in PAGES.items():
            _open(page, server, path + present, timeout=240)
            assert page.locator('[data-testid="stException"]').count() == 0, name
            assert "Something went wrong" not in page.inner_text("body"), name
            page.screenshot(path=str(SCREENSHOT_DIR / f"{name}_{w}x{h}{'_presenter' if present else ''}.png"))
