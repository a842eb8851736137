"""The lesson in chromium as a class meets it: walked with the arrow keys at 1024x768 in presenter mode and at
1280x800, every step's main interactive on the first screen (screenshots of every step), a guess painted with the
mouse and revealed, and the last step opening the Reconstruct page on the lesson's picture and mask."""
import pytest

from browser import SCREENSHOT_DIR, browser_page, wait_idle

from mae_core.classroom.lesson import STEPS

pytestmark = pytest.mark.browser

# each step's main interactive: it must sit whole on the first screen
MAIN = {"patches": "lesson-grid", "guess": "mae-guess", "encoder": "lesson-flow", "decoder": "mae-picker",
        "ratio": "lesson-ratio", "learned": "stPlotlyChart", "pretraining": "stButtonGroup", "finetune": "stButtonGroup",
        "yourturn": "stButton"}


def _idle(page, timeout=120):
    page.wait_for_timeout(700)
    wait_idle(page, timeout)
    page.wait_for_timeout(400)


def _heading(page) -> str:
    return page.locator('[data-testid="stMain"] h3').first.inner_text().strip()


@pytest.mark.parametrize("width, height, present", [(1024, 768, True), (1280, 800, False)])
def test_the_lesson_walked_with_the_arrow_keys_fits_every_step(server, width, height, present):
    tag = f"{width}x{height}{'_presenter' if present else ''}"
    with browser_page(width, height) as page:
        page.goto(server + "/lesson" + ("?present=1" if present else ""))
        page.get_by_test_id("lesson-progress").wait_for(timeout=120000)
        _idle(page)
        for k, step in enumerate(STEPS):
            page.get_by_text(f"step {k + 1} of {len(STEPS)}").wait_for(timeout=60000)
            _idle(page)
            assert _heading(page) == step.headline
            assert f"step={k + 1}" in page.url
            main = page.locator(f'[data-testid="stMain"] [data-testid="{MAIN[step.key]}"]').first
            main.wait_for(timeout=60000)
            box = main.bounding_box()
            assert box and box["y"] >= 0 and box["y"] + box["height"] <= height + 1, (step.key, box)
            assert page.locator('[data-testid="stException"]').count() == 0
            page.screenshot(path=str(SCREENSHOT_DIR / f"lesson_step{k + 1}_{tag}.png"))
            if k < len(STEPS) - 1:
                page.get_by_test_id("lesson-progress").click()   # the focus on no control: arrows move the lesson
                page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowLeft")
        page.get_by_text(f"step {len(STEPS) - 1} of {len(STEPS)}").wait_for(timeout=60000)


def test_a_painted_guess_is_revealed_beside_the_mae(server):
    with browser_page(1024, 768) as page:
        page.goto(server + "/lesson?step=2&present=1")
        painter = page.get_by_test_id("mae-guess")
        painter.wait_for(timeout=120000)
        _idle(page)
        page.locator(".mae-swatch").nth(4).click()                        # white
        box = painter.bounding_box()
        page.mouse.move(box["x"] + 3, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] - 3, box["y"] + box["height"] / 2, steps=25)
        page.mouse.up()
        _idle(page)
        painted = page.locator('[data-testid="mae-guess"] .mae-cell.painted').count()
        assert painted >= 3
        assert page.get_by_text(f"{painted} of 37 hidden patches painted").count() == 1
        page.get_by_role("button", name="Reveal").click()
        page.get_by_test_id("lesson-reveal").wait_for(timeout=60000)
        _idle(page)
        text = page.get_by_test_id("lesson-reveal").inner_text()
        for name in ("Your guess", "The MAE", "Copying the neighbours"):
            assert name in text
        assert "The real picture" in page.get_by_test_id("lesson-answer").inner_text()
        assert page.get_by_test_id("mae-guess").count() == 0                 # no painting once the answer shows
        verdict = page.get_by_text("came closest").first.bounding_box()      # the verdict on the first screen
        assert verdict["y"] + verdict["height"] <= 768
        assert page.get_by_text("came closest").count() >= 1
        page.screenshot(path=str(SCREENSHOT_DIR / "lesson_step2_revealed_1024x768_presenter.png"))
        page.get_by_role("button", name="Try again").click()                 # the painter is back, white still on
        page.get_by_test_id("mae-guess").wait_for(timeout=60000)
        _idle(page)
        swatches = page.locator(".mae-swatch")
        assert "on" in (swatches.nth(4).get_attribute("class") or "")
        assert page.locator('[data-testid="mae-guess"] .mae-cell.painted').count() == 0


def test_your_turn_opens_reconstruct_on_the_lessons_picture_and_mask(server):
    with browser_page(1280, 800) as page:
        page.goto(server + "/lesson?step=9")
        page.get_by_role("button", name="Paint your own masks").wait_for(timeout=120000)
        _idle(page)
        page.get_by_role("button", name="Paint your own masks").click()
        page.get_by_test_id("mae-painter").wait_for(timeout=120000)
        _idle(page)
        assert "m=fmnist_r75" in page.url and "img=fm%3A0" in page.url or "img=fm:0" in page.url
        assert page.get_by_text("37 of 49 hidden").count() >= 1
        assert page.locator('[data-testid="mae-painter"] .mae-cell.hidden').count() == 37


def test_after_an_answer_or_a_toggle_the_arrow_keys_still_move_the_lesson(server):
    """Seen in a rehearsal: once a pill (an answer) or a toggle had the focus, ArrowRight moved within the answers
    and the teacher was stuck on the step."""
    with browser_page(1024, 768) as page:
        page.goto(server + "/lesson?step=7&present=1")
        pills = page.locator('[data-testid="stMain"] [data-testid="stButtonGroup"] button')
        pills.first.wait_for(timeout=120000)
        _idle(page)
        pills.nth(2).click()                                              # 75%
        _idle(page)
        page.keyboard.press("ArrowRight")
        page.get_by_text("step 8 of 9").wait_for(timeout=60000)
        _idle(page)
        page.keyboard.press("ArrowLeft")
        page.get_by_text("step 7 of 9").wait_for(timeout=60000)
        _idle(page)
        assert "75%" in page.locator('[data-testid="stMain"] [data-testid="stButtonGroup"]').inner_text()
        page.goto(server + "/lesson?step=1&present=1")
        page.get_by_test_id("lesson-grid").wait_for(timeout=120000)
        _idle(page)
        page.get_by_text("Number the patches").click()                   # a toggle
        _idle(page)
        page.keyboard.press("ArrowRight")
        page.get_by_text("step 2 of 9").wait_for(timeout=60000)
