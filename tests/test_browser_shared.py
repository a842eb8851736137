"""End to end on a shared server (MAE_SHARED=1): what one visitor types is shown to others as text only."""
import pytest

from browser import SCREENSHOT_DIR, browser_page, streamlit_server, wait_idle

pytestmark = pytest.mark.browser  # a real server and chromium: minutes

HOSTILE = "[Your session expired - click here](http:evil.example) ![](pixel.png?who=bob)"


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    allowed = tmp_path_factory.mktemp("teacher")
    (allowed / HOSTILE).mkdir()  # a folder with no images: a run on it fails, and its error names the folder
    cache = tmp_path_factory.mktemp("cache")
    runs = tmp_path_factory.mktemp("runs")
    env = {"MAE_CACHE_DIR": str(cache), "MAE_RUNS_DIR": str(runs), "OMP_NUM_THREADS": "1", "MAE_SHARED": "1",
           "MAE_ALLOWED_DIRS": str(allowed)}
    with streamlit_server(env) as url:
        yield url, allowed


def test_a_visitors_text_reaches_other_visitors_as_text_only(shared_server):
    url, allowed = shared_server
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    with browser_page(1280, 800) as page:                    # the visitor who types the payload
        page.goto(url + "/train")
        page.wait_for_selector("text=Pretrain a masked autoencoder", timeout=60000)
        wait_idle(page, 60)
        page.get_by_role("combobox", name="Data").click()      # (the sidebar's scenes menu is the first select)
        page.get_by_role("option", name="Image folder…").click()
        wait_idle(page, 60)
        box = page.get_by_role("textbox", name="Folder (one subfolder per class)")
        box.fill(str(allowed / HOSTILE))
        box.press("Enter")
        wait_idle(page, 60)
        page.get_by_role("button", name="Start training").click()
        page.wait_for_selector("text=Training stopped", timeout=120000)
    with browser_page(1280, 800) as page:                    # everyone else
        page.goto(url + "/train")
        page.wait_for_selector("text=Training stopped", timeout=60000)
        wait_idle(page, 60)
        main = page.get_by_test_id("stMain")
        assert "[Your session expired - click here](http:evil.example)" in main.inner_text()  # shown, literally
        links = main.locator("a").evaluate_all("els => els.map(e => e.textContent + ' ' + e.href)")
        assert not [l for l in links if "click here" in l or "evil" in l], links
        images = main.locator("img").evaluate_all("els => els.map(e => e.src)")
        assert not [s for s in images if "pixel.png" in s], images
        page.screenshot(path=str(SCREENSHOT_DIR / "shared_hostile_name.png"))
