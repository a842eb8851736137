"""Attention maps, two models side by side and lesson scenes, in a real browser at 1280x800."""
import re

import pytest

from browser import SCREENSHOT_DIR, browser_page, interactive_chart, wait_idle

pytestmark = pytest.mark.browser


def _open(page, url):
    page.goto(url)
    page.wait_for_timeout(1200)
    wait_idle(page, 120)
    page.wait_for_timeout(500)


def _hidden_cells(page, testid="mae-painter"):
    return page.locator(f'[data-testid="{testid}"] .mae-cell').evaluate_all(
        "cells => cells.flatMap((c, i) => c.classList.contains('hidden') ? [i] : [])")


def test_clicking_a_patch_changes_the_attention_map(server):
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    with browser_page(1280, 800) as page:
        _open(page, server + "/?m=fmnist_r75&img=fm:0&st=random&r=0.5&s=0")
        page.get_by_text("Attention maps: what the transformer looks at").click()
        page.wait_for_timeout(800)
        wait_idle(page)
        picker = page.locator('[data-testid="mae-picker"]')
        picker.evaluate("e => e.scrollIntoView({block: 'center'})")
        page.wait_for_timeout(300)
        assert "What the cls token attends to" in page.inner_text("body")
        before = picker.evaluate("e => e.style.backgroundImage")
        hidden = set(_hidden_cells(page))                                # a visible patch: uncovered in the painter
        assert len(hidden) == 49 - int(49 * 0.5)
        visible = [i for i in range(49) if i not in hidden]
        q = visible[len(visible) // 2]
        box = picker.bounding_box()
        cell = box["width"] / 7
        page.mouse.click(box["x"] + cell * (q % 7 + 0.5), box["y"] + cell * (q // 7 + 0.5))
        page.wait_for_function(f"() => document.body.innerText.includes('What patch {q} (row')", timeout=20000)
        wait_idle(page)
        assert picker.evaluate("e => e.style.backgroundImage") != before
        page.screenshot(path=str(SCREENSHOT_DIR / "attention_1280x800.png"))


def test_second_model_is_shown_beside_the_first(server):
    with browser_page(1280, 800) as page:
        _open(page, server + "/?m=fmnist_r75&img=fm:5&st=random&r=0.75&s=3&cmp=fmnist_r75_normpix")
        imgs = page.locator('[data-testid="mae-image"]')
        assert imgs.count() == 2                                         # both reconstructions
        table = page.locator('[data-testid="mae-table"]').first.inner_text()
        assert "75% · norm-pix" in table and "n/a" in table and re.search(r"0\.0\d\d\b", table)   # rounded for reading
        page.locator('[data-testid="mae-table"]').first.evaluate("e => e.scrollIntoView({block: 'center'})")
        page.screenshot(path=str(SCREENSHOT_DIR / "compare_1280x800.png"))


def test_a_link_restores_the_mask_and_the_model_and_follows_the_page(server):
    heel = [33, 34, 40, 41]
    with browser_page(1280, 800) as page:
        _open(page, server + "/?m=fmnist_r75_normpix&img=fm:0&mask=0000000060c00")
        assert _hidden_cells(page) == heel
        assert "Painted by hand: 4 of 49" in page.inner_text("body")
        assert "75% · norm-pix" in page.get_by_role("combobox", name="Bundled model").input_value()
        page.screenshot(path=str(SCREENSHOT_DIR / "scene_link_1280x800.png"))
        # painting one more patch puts the new mask in the address bar
        painter = page.locator('[data-testid="mae-painter"]')
        painter.evaluate("e => e.scrollIntoView({block: 'center'})")
        page.wait_for_timeout(300)
        box = painter.bounding_box()
        cell = box["width"] / 7
        page.mouse.click(box["x"] + cell * 0.5, box["y"] + cell * 0.5)   # cell 0
        page.wait_for_function("() => location.search.includes('mask=8000000060c00')", timeout=20000)
    with browser_page(1280, 800) as page:                               # a stale link: the defaults, with a notice
        _open(page, server + "/?m=no_such_model&mask=123")
        body = page.inner_text("body")
        assert "Ignored m=" in body and "Ignored mask=" in body and "37 / 49" in body


def test_prepared_scene_opens_its_page(server):
    with browser_page(1280, 800) as page:
        _open(page, server)
        page.get_by_role("combobox", name="Lesson scenes").click()
        page.get_by_role("option", name="A sneaker's neighbours on the map").click()
        page.wait_for_url(re.compile(r".*/embeddings\?.*pt=1.*"), timeout=60000)
        interactive_chart(page)
        wait_idle(page, 240)
        assert page.locator('[data-testid="stNumberInput"] input').last.input_value() == "1"
        assert "Select image 1" in page.inner_text("body")
