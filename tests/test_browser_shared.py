"""End to end on a shared server (MAE_SHARED=1), attacked the way a mischievous student would: what one visitor
types reaches others as text only, no page names a server folder, a shared link carries no control of a run, and
one browser is one visitor however many tabs it opens."""
import contextlib
import shutil

import numpy as np
import pytest
from PIL import Image

from browser import SCREENSHOT_DIR, browser_page, chromium, streamlit_server, wait_idle

pytestmark = pytest.mark.browser  # a real server and chromium: minutes

# a folder name that is a Markdown link, an image, a bare www. address and a scheme:// address (nested folders)
HOSTILE = ("[Your session expired - click here](http:evil.example) ![](pixel.png?who=bob) www.evil.example and "
           "https:") + "/evil.example/phish"


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    allowed = tmp_path_factory.mktemp("teacher")
    folder = allowed / HOSTILE
    rng = np.random.default_rng(0)
    for c in ("a", "b"):                 # real images: the page times a run on them, so Start is offered
        (folder / c).mkdir(parents=True)
        for i in range(40):
            Image.fromarray((rng.random((64, 64, 3)) * 255).astype(np.uint8)).save(folder / c / f"{i}.png")
    cache = tmp_path_factory.mktemp("cache")
    runs = tmp_path_factory.mktemp("runs")
    env = {"MAE_CACHE_DIR": str(cache), "MAE_RUNS_DIR": str(runs), "OMP_NUM_THREADS": "1", "MAE_SHARED": "1",
           "MAE_ALLOWED_DIRS": str(allowed), "MAE_UPLOAD_DIR": str(cache / "uploads")}
    with streamlit_server(env) as url:
        yield url, allowed, cache


@contextlib.contextmanager
def visitors(width=1280, height=800):
    """``new_visitor()`` returns a function that opens a tab in a browser profile of that visitor's own (its own
    cookie jar): two calls of it are two tabs of one browser."""
    with chromium() as browser:
        yield lambda: browser.new_context(viewport={"width": width, "height": height}).new_page


def _open(page, url, wait_for="[data-testid=stMain]"):
    page.goto(url)
    page.wait_for_selector(wait_for, timeout=90000)
    page.wait_for_timeout(800)
    wait_idle(page, 120)


def _visitor_links(page) -> list:
    """Links on the page whose text or address came from a visitor (anything naming evil.example or 'click')."""
    links = page.get_by_test_id("stMain").locator("a").evaluate_all(
        "els => els.map(e => e.textContent + ' -> ' + e.href)")
    links += page.get_by_test_id("stSidebar").locator("a").evaluate_all(
        "els => els.map(e => e.textContent + ' -> ' + e.href)")
    return [l for l in links if "evil" in l or "click here" in l or "pixel.png" in l]


def _server_folders(text: str, *folders) -> list:
    return [str(f) for f in folders if str(f) in text] + (["/tmp/"] if "/tmp/" in text else [])


def test_a_link_with_addresses_in_it_shows_them_as_text(shared_server):
    url, allowed, cache = shared_server
    with browser_page(1280, 800) as page:
        _open(page, url + "/?m=https://evil.example/login&cmp=www.evil.example", "text=Ignored m=")
        body = page.inner_text("body").replace("\u2060", "")   # (word joiners break the bare addresses' links)
        assert "Ignored m='https://evil.example/log'" in body and "Ignored cmp='www.evil.example'" in body  # as text
        assert _visitor_links(page) == []                                      # was two live links


def test_a_visitors_folder_reaches_other_visitors_as_text_only_and_no_page_names_a_server_folder(shared_server):
    url, allowed, cache = shared_server
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    with browser_page(1280, 800) as page:                    # the visitor who types the payload
        _open(page, url + "/train", "text=Pretrain a masked autoencoder")
        page.get_by_role("combobox", name="Data").click()      # (the sidebar's scenes menu is the first select)
        page.get_by_role("option", name="Image folder…").click()
        wait_idle(page, 60)
        box = page.get_by_role("textbox", name="Folder (one subfolder per class)")
        box.fill(HOSTILE)                                      # a relative path: it starts in the allowed folder
        box.press("Enter")
        page.wait_for_selector("text=steps of", timeout=120000)   # the run is timed on the images: Start offered
        wait_idle(page, 60)
        start = page.get_by_role("button", name="Start training")
        assert start.is_enabled()
        shutil.rmtree(allowed / HOSTILE.split("/")[0])         # the folder goes before the run reads it
        start.click()
        page.wait_for_selector("text=Training stopped", timeout=120000)
        wait_idle(page, 60)
        assert _visitor_links(page) == []
        # the page that refuses a folder names it as the visitor may type it, never the server's path to it
        box = page.get_by_role("textbox", name="Folder (one subfolder per class)")
        box.fill("no such folder")
        box.press("Enter")
        page.wait_for_timeout(1500)
        wait_idle(page, 60)
        assert page.get_by_role("button", name="Start training").is_disabled()  # nothing to time: nothing to start
        assert _server_folders(page.inner_text("body"), allowed, cache) == []
    with browser_page(1280, 800) as page:                    # everyone else
        _open(page, url + "/train", "text=Training stopped")
        main = page.get_by_test_id("stMain")
        text = main.inner_text().replace("\u2060", "")
        assert "[Your session expired - click here](http:evil.example)" in text          # shown, literally
        assert "www" in text and "evil.example" in text
        assert _visitor_links(page) == []
        images = main.locator("img").evaluate_all("els => els.map(e => e.src)")
        assert not [s for s in images if "pixel.png" in s], images
        assert _server_folders(text, allowed, cache) == []
        page.screenshot(path=str(SCREENSHOT_DIR / "shared_hostile_name.png"))
        # the model picker's captions name no server folder either
        side = page.get_by_test_id("stSidebar")
        for source in ("Trained here", "Official MAE"):
            _open(page, url)
            side.get_by_text(source, exact=True).click()
            page.wait_for_timeout(800)
            wait_idle(page, 60)
            assert _server_folders(page.inner_text("body"), allowed, cache) == [], source


def test_uploads_that_fail_are_not_kept(shared_server, tmp_path):
    url, allowed, cache = shared_server
    junk = tmp_path / "weights.bin"
    junk.write_bytes(b"\0" * (2 * 2**20))
    import torch
    fake = tmp_path / "empty.pth"
    torch.save({"model": {"nothing": torch.zeros(1)}}, fake)   # looks like a checkpoint, holds no MAE
    with browser_page(1280, 800) as page:
        _open(page, url, '[data-testid="mae-painter"]')
        side = page.get_by_test_id("stSidebar")
        side.get_by_text("Upload", exact=True).first.click()
        wait_idle(page)
        side.locator('input[type="file"]').first.set_input_files(str(fake))
        page.wait_for_selector("text=not an MAE", timeout=60000)
        wait_idle(page)
        assert "Still using the previous model" in page.inner_text("body")
        side.locator('input[type="file"]').first.set_input_files(str(junk))   # (the uploader keeps both)
        page.wait_for_selector("text=weights.bin: not a PyTorch checkpoint", timeout=60000)
        wait_idle(page)
        body = page.inner_text("body")
        assert _server_folders(body, allowed, cache) == [] and "uploads" not in body
    kept = [p for p in (cache / "uploads").rglob("*") if p.is_file()] if (cache / "uploads").exists() else []
    assert kept == []                                           # was 800 MB after two junk uploads


def _start_micro_run(page, url, name):
    _open(page, url + "/train", "text=Pretrain a masked autoencoder")
    page.get_by_role("combobox", name="Model size").click()
    page.get_by_role("option", name="Micro · 0.1M").click()
    wait_idle(page, 60)
    page.get_by_text("epochs", exact=True).click()
    wait_idle(page, 60)
    page.get_by_role("spinbutton", name="Epochs").fill("200")
    page.get_by_role("spinbutton", name="Epochs").press("Enter")
    box = page.get_by_role("textbox", name="Run name")
    box.fill(name)
    box.press("Enter")
    page.wait_for_selector("text=epochs ≈", timeout=120000)
    wait_idle(page, 60)
    page.get_by_role("button", name="Start training").click()
    page.wait_for_selector(f"text={name} — ", timeout=60000)
    wait_idle(page, 60)


def test_a_shared_link_hands_over_no_run_and_one_browser_is_one_visitor(shared_server):
    url, allowed, cache = shared_server
    with visitors() as new_visitor:
        alice, bob = new_visitor(), new_visitor()
        a = alice()
        _start_micro_run(a, url, "alices_run")
        a.get_by_role("button", name="Stop").wait_for(timeout=60000)
        assert "tk=" not in a.url
        a.get_by_test_id("stSidebar").get_by_role("combobox", name="Lesson scenes").click()   # a lesson scene
        a.get_by_role("option").first.click()
        a.wait_for_timeout(1500)
        wait_idle(a, 120)
        shared = a.url
        assert "tk=" not in shared
        # another tab of the same browser is the same visitor: it controls the run, and has no second slot
        a2 = alice()
        _open(a2, url + "/train", "text=alices_run")
        a2.get_by_role("button", name="Stop").wait_for(timeout=60000)     # the cookie came with the new tab
        a2.get_by_role("button", name="Start training").click()
        a2.wait_for_selector("text=you already have 1 run(s) training or waiting", timeout=60000)
        b = bob()                                            # another student opens the teacher's shared link
        _open(b, shared)
        _open(b, url + "/train", "text=alices_run")
        assert "another visitor's run" in b.inner_text("body")
        assert b.get_by_role("button", name="Stop").count() == 0
        a2.get_by_role("button", name="Stop").click()            # its owner still can
        a2.wait_for_selector("text=alices_run — stopped", timeout=60000)
