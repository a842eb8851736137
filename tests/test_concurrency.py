"""Several browser sessions at once against one server: each sees only its own mask, and the shared model is
never mutated (a fresh session afterwards gets exactly the numbers the first one got)."""
import pytest

from browser import browser_page, streamlit_server, wait_idle

pytestmark = pytest.mark.browser  # several real sessions on one server

HIDDEN_CELLS_JS = "cells => cells.map((c, i) => c.classList.contains('hidden') ? i : -1).filter(i => i >= 0)"


def hidden_cells(page) -> list:
    """Indices of the painter's hidden cells (Playwright's CSS engine pierces the component's shadow root)."""
    return page.locator('[data-testid="mae-painter"] > .mae-cell').evaluate_all(HIDDEN_CELLS_JS)


def _mse(page) -> str:
    return page.locator('[data-testid="stMetricValue"]').nth(2).inner_text()


def test_parallel_sessions_are_isolated_and_the_model_is_not_mutated(tmp_path):
    with streamlit_server({"MAE_CACHE_DIR": str(tmp_path), "MAE_RUNS_DIR": str(tmp_path / "runs"),
                           "OMP_NUM_THREADS": "1"}) as url, browser_page() as first:
        browser = first.context.browser
        first.goto(url)
        first.wait_for_selector('[data-testid="mae-painter"]', timeout=60000)
        wait_idle(first)
        baseline = _mse(first)
        first_mask = hidden_cells(first)
        assert len(first_mask) == 37
        pages = []
        for _ in range(6):
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.goto(url)
            pages.append(page)
        for page in pages:
            page.wait_for_selector('[data-testid="mae-painter"]', timeout=120000)
            wait_idle(page)
            page.get_by_role("button", name="Clear").click()
        for page in pages:
            page.wait_for_function("() => document.body.innerText.includes('0 / 49')", timeout=60000)
        for i, page in enumerate(pages):  # every stroke is sent before any result is awaited
            box = page.locator('[data-testid="mae-painter"]').bounding_box()
            cell = box["width"] / 7
            y = box["y"] + cell * (i + 0.5)
            page.mouse.move(box["x"] + cell * 0.5, y)
            page.mouse.down()
            page.mouse.move(box["x"] + cell * 6.5, y, steps=6)
            page.mouse.up()
        for i, page in enumerate(pages):
            page.wait_for_function("() => document.body.innerText.includes('7 / 49')", timeout=120000)
            assert hidden_cells(page) == list(range(7 * i, 7 * i + 7))
        fresh = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        fresh.goto(url)
        fresh.wait_for_selector('[data-testid="mae-painter"]', timeout=60000)
        wait_idle(fresh)
        assert _mse(fresh) == baseline
        assert hidden_cells(first) == first_mask  # the first session kept its own mask
