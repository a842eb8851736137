"""The defects a lesson rehearsal found (1024x768 projector with the sidebar open, 1280x800 laptop), each checked in
the browser where the class would see it."""
import re

import pytest

from browser import SCREENSHOT_DIR, browser_page, interactive_chart, wait_idle

pytestmark = pytest.mark.browser


def _open(page, url, timeout=120):
    page.goto(url)
    page.wait_for_timeout(1200)
    wait_idle(page, timeout)
    page.wait_for_timeout(500)


def _hidden_count(page, cells=49, timeout=60000):
    """The painter's hidden patches, once its cells are drawn (on a loaded machine a page can be idle before the
    painter's script has built them; locators reach into the component's shadow root)."""
    from playwright.sync_api import expect
    expect(page.locator('[data-testid="mae-painter"] .mae-cell')).to_have_count(cells, timeout=timeout)
    return page.locator('[data-testid="mae-painter"] .mae-cell.hidden').count()


def test_the_sidebar_collapses_and_reopens_in_presenter_mode(server):
    """Seen: once collapsed at 1024 in presenter mode the expand control had zero size (it sat in the hidden
    toolbar), and a reload kept it collapsed: the only way back was to edit the address."""
    with browser_page(1024, 768) as page:
        _open(page, server + "/?present=1")
        side = page.get_by_test_id("stSidebar")
        side.hover()
        page.get_by_test_id("stSidebarCollapseButton").locator("button").click()
        page.wait_for_timeout(800)
        assert side.bounding_box()["width"] < 10
        expand = page.get_by_test_id("stExpandSidebarButton")
        box = expand.bounding_box()
        assert box and box["width"] > 20 and box["height"] > 20
        heading = page.get_by_role("heading", name="What does the MAE put back?").bounding_box()
        assert box["y"] + box["height"] <= heading["y"] + 2           # the control does not sit on the heading
        page.screenshot(path=str(SCREENSHOT_DIR / "presenter_sidebar_collapsed_1024x768.png"))
        page.reload()
        page.wait_for_timeout(1500)
        wait_idle(page, 60)
        if side.bounding_box()["width"] < 10:                          # the browser remembered: it still reopens
            expand.click()
        else:
            side.hover()
            page.get_by_test_id("stSidebarCollapseButton").locator("button").click()
            page.wait_for_timeout(800)
            expand.click()
        page.wait_for_timeout(800)
        assert side.bounding_box()["width"] > 250
        assert "present=1" in page.url


def test_the_explainer_diagram_is_drawn(server):
    """Seen: 'What is a masked autoencoder?' drew nothing in the browser: Streamlit's HTML element drops inline <svg>
    (AppTest saw the markup)."""
    with browser_page(1024, 768) as page:
        _open(page, server)
        page.get_by_text("What is a masked autoencoder?").click()
        diagram = page.get_by_role("img", name="How this MAE processes an image")
        diagram.wait_for(timeout=20000)
        diagram.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        box = diagram.bounding_box()
        assert box["height"] > 120 and box["width"] > 400
        assert page.evaluate("() => document.querySelector('img[alt=\"How this MAE processes an image\"]')"
                             ".naturalWidth") > 0                      # the image decoded
        page.screenshot(path=str(SCREENSHOT_DIR / "explainer_1024x768.png"))


def test_after_undo_the_slider_the_text_and_the_address_describe_one_mask(server):
    """Seen: Generate, ratio to 0.85, Undo: the text said 'ratio 0.80: 40 of 49' while the slider and the URL said
    0.85, and the URL opened elsewhere gave another mask."""
    with browser_page(1280, 800) as page:
        _open(page, server + "/?m=fmnist_r75&img=fm:0&st=random&r=0.8&s=0")
        slider = page.locator('[data-testid="stSlider"] input[type=range]').first
        slider.focus()
        page.keyboard.press("ArrowRight")                              # 0.80 -> 0.85
        page.wait_for_function("() => location.search.includes('r=0.85')", timeout=20000)
        wait_idle(page)
        page.get_by_role("button", name="Undo", exact=True).click()
        page.wait_for_function("() => location.search.includes('r=0.8&') || location.search.endsWith('r=0.8')",
                               timeout=20000)
        wait_idle(page)
        body = page.inner_text("body")
        assert "ratio 0.80, seed 0: 40 of 49 patches hidden" in body
        assert float(slider.input_value()) == pytest.approx(0.8)
        assert page.get_by_test_id("stSliderThumbValue").first.inner_text().strip() == "0.80"
        assert _hidden_count(page) == 40
        link = page.url
    with browser_page(1280, 800) as page:                      # the address restores that very mask
        _open(page, link)
        assert _hidden_count(page) == 40
        assert "ratio 0.80, seed 0: 40 of 49 patches hidden" in page.inner_text("body")


def test_hidden_patches_are_opaque_and_unlike_the_background(server):
    """Seen: hidden cells (hatched, 88% dark) let the image show through and looked like Fashion-MNIST's black
    background on a washed-out projector."""
    with browser_page(1024, 768) as page:
        _open(page, server + "/?m=fmnist_r75&img=fm:0&st=random&r=0.5&s=0")
        colour = page.locator('[data-testid="mae-painter"] .mae-cell.hidden').first.evaluate(
            "e => getComputedStyle(e).backgroundColor")
        r, g, b, *a = map(float, re.findall(r"[\d.]+", colour))
        assert (not a or a[0] == 1.0)                                  # opaque: nothing of the image shows through
        assert max(r, g, b) - min(r, g, b) > 100 and r + g + b > 300   # a bright hue, far from black, white and grey
        page.locator('[data-testid="mae-painter"]').screenshot(path=str(SCREENSHOT_DIR / "hidden_1024x768.png"))


def test_the_painter_and_its_reconstruction_are_on_a_laptops_first_screen(server):
    """Seen at 1280x800 (normal mode): the painter and the reconstruction started below the fold."""
    for url, size in (("/", (1280, 800)), ("/?present=1", (1280, 800)), ("/?present=1", (1024, 768))):
        with browser_page(*size) as page:
            _open(page, server + url)
            for testid in ("mae-painter", "mae-reconstruction"):
                box = page.locator(f'[data-testid="{testid}"]').first.bounding_box()
                assert box and box["y"] >= 0 and box["y"] + box["height"] <= size[1], (url, size, testid, box)
                assert box["width"] >= 300, (url, size, testid, box)   # not shrunk to a stamp to fit


def test_a_run_is_one_card_with_a_strip_seen_from_the_back_of_the_room(server):
    """Seen: 'Resu…' cut at 1024; the image strip about 290 px wide; Resume made a second card with the same name
    whose loss chart started at step 104."""
    from test_browser_classroom import CUT_TEXT_JS
    from test_browser_shared import _start_micro_run
    with browser_page(1024, 768) as page:
        _start_micro_run(page, server, "rehearsal_run")
        page.wait_for_selector("text=Held-out images: original, masked", timeout=120000)
        page.get_by_role("button", name="Stop").click()
        page.wait_for_selector("text=rehearsal_run — stopped", timeout=120000)
        page.get_by_role("button", name="Resume").wait_for(timeout=60000)
        wait_idle(page, 60)
        strip = page.get_by_test_id("stImage").first.locator("img")
        assert strip.bounding_box()["width"] >= 600
        assert not page.evaluate(CUT_TEXT_JS)
        page.screenshot(path=str(SCREENSHOT_DIR / "train_run_1024x768.png"))
        page.get_by_role("button", name="Resume").click()
        page.wait_for_selector("text=rehearsal_run — running", timeout=120000)
        page.wait_for_timeout(3000)
        assert page.get_by_text(re.compile(r"rehearsal_run — ")).count() == 1          # one run, one card
        first_step = page.evaluate("() => Math.min(...document.querySelector('.js-plotly-plot').data[0].x)")
        assert first_step <= 10                                                       # its curve from the start
        page.get_by_role("button", name="Stop").click()
        page.wait_for_selector("text=rehearsal_run — stopped", timeout=120000)


def test_clicking_a_point_keeps_the_map_where_it_was(server):
    """Seen at 1024x768: a click selected the point, and the page scrolled 736 px, taking the map off the screen
    (the first-visit note above it vanished on the rerun, and the browser's scroll anchoring jumped)."""
    import numpy as np
    from test_app_browser import MAP_POINTS_JS
    with browser_page(1024, 768) as page:
        page.goto(server + "/embeddings")
        interactive_chart(page)
        wait_idle(page, 240)
        plot = page.locator(".js-plotly-plot").first
        plot.scroll_into_view_if_needed()
        page.wait_for_timeout(1000)
        got = page.evaluate(MAP_POINTS_JS)
        pts, (left, top, right, bottom) = np.array(got["pts"], dtype=float), got["rect"]
        ok = ((pts[:, 0] > left + 40) & (pts[:, 0] < right - 150) & (pts[:, 1] > max(top, 0) + 40)
              & (pts[:, 1] < min(bottom, 768) - 10))
        i = int(np.flatnonzero(ok)[0])
        before = plot.bounding_box()["y"]
        page.mouse.move(pts[i, 0], pts[i, 1])
        page.wait_for_timeout(300)
        page.mouse.click(pts[i, 0], pts[i, 1])
        page.wait_for_function(f"() => document.body.innerText.includes('share the class of #{int(pts[i, 2])}')",
                               timeout=60000)
        wait_idle(page, 60)
        page.wait_for_timeout(800)
        assert abs(plot.bounding_box()["y"] - before) < 10
