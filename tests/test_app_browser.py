"""End to end: a real server, a real browser, a real drag across the patch grid."""
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from browser import SCREENSHOT_DIR, browser_page, interactive_chart, wait_idle

pytestmark = pytest.mark.browser  # a real server and chromium: minutes


def _hidden_count(page) -> int:
    text = page.locator('[data-testid="stMetricValue"]').first.inner_text()
    return int(re.match(r"\s*(\d+)\s*/", text).group(1))


def _recon_src(page) -> str:
    return page.locator('[data-testid="mae-reconstruction"]').first.get_attribute("src")


def test_paint_by_dragging_updates_mask_and_reconstruction(server):
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    with browser_page() as page:
        page.goto(server)
        painter = page.locator('[data-testid="mae-painter"]')
        painter.wait_for(timeout=60000)
        wait_idle(page)
        assert _hidden_count(page) == 37  # the default: 75% of 49 hidden, as official counting
        page.get_by_role("button", name="Clear").click()
        page.wait_for_function("() => document.body.innerText.includes('0 / 49')", timeout=20000)
        wait_idle(page)
        before = _recon_src(page)
        box = painter.bounding_box()
        cell = box["width"] / 7
        y = box["y"] + cell * 3.5  # the middle row
        page.mouse.move(box["x"] + cell * 0.5, y)
        page.mouse.down()
        for k in range(1, 15):
            page.mouse.move(box["x"] + cell * (0.5 + 6 * k / 14), y)
        page.mouse.up()
        page.wait_for_function("() => document.body.innerText.includes('7 / 49')", timeout=20000)
        wait_idle(page)
        assert _hidden_count(page) == 7
        assert _recon_src(page) != before
        # a stroke that starts on a hidden patch erases
        page.mouse.move(box["x"] + cell * 0.5, y)
        page.mouse.down()
        page.mouse.move(box["x"] + cell * 2.5, y, steps=5)
        page.mouse.up()
        page.wait_for_function("() => document.body.innerText.includes('4 / 49')", timeout=20000)
        wait_idle(page)
        page.screenshot(path=str(SCREENSHOT_DIR / "reconstruct_painted.png"))
        # the panel PNG is drawn only on click (deferred download data), and it is the current mask's panel
        with page.expect_download(timeout=30000) as dl:
            page.get_by_role("button", name="Panel (PNG)").click()
        assert dl.value.suggested_filename.endswith("_4of49.png")
        png = Path(dl.value.path()).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert Image.open(io.BytesIO(png)).size[0] > 5 * 224
        # generated masks still work after painting
        page.get_by_role("button", name="Hide all").click()
        page.wait_for_function("() => document.body.innerText.includes('49 / 49')", timeout=20000)
        wait_idle(page)
        assert "Everything is hidden" in page.inner_text("body")


MAP_POINTS_JS = """
() => {
  const gd = document.querySelector('.js-plotly-plot');
  const fl = gd._fullLayout, r = gd.getBoundingClientRect();
  const pts = [];
  for (const t of gd._fullData) {
    for (let i = 0; i < t.x.length; i++) {
      pts.push([r.left + fl._size.l + fl.xaxis.l2p(t.x[i]), r.top + fl._size.t + fl.yaxis.l2p(t.y[i]), t.customdata[i]]);
    }
  }
  return {pts: pts, rect: [r.left, r.top, r.right, r.bottom]};
}
"""


def _open_embedding_map(page, server):
    """Open the Embeddings page and return its points as (x px, y px, image number) rows and the plot's rect."""
    page.goto(server + "/embeddings")
    interactive_chart(page)
    wait_idle(page, 240)
    page.wait_for_timeout(1500)
    got = page.evaluate(MAP_POINTS_JS)
    return np.array(got["pts"], dtype=float), got["rect"]


def test_box_selecting_points_on_the_embedding_map_shows_their_neighbours(server):
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    with browser_page(1400, 1200) as page:
        pts, _ = _open_embedding_map(page, server)
        pt = {"x": pts[0, 0], "y": pts[0, 1]}
        half = 8
        near = (np.abs(pts[:, 0] - pt["x"]) < half) & (np.abs(pts[:, 1] - pt["y"]) < half)
        inside = [int(i) for i in pts[near, 2]]
        assert inside
        page.locator('.js-plotly-plot .modebar-btn[data-title="Box Select"]').click()
        page.mouse.move(pt["x"] - half, pt["y"] - half)
        page.mouse.down()
        page.mouse.move(pt["x"] + half, pt["y"] + half, steps=6)
        page.mouse.up()
        first = min(inside)
        page.wait_for_function(f"() => document.body.innerText.includes('share the class of #{first}')",
                               timeout=60000)
        wait_idle(page, 60)
        body = page.inner_text("body")
        several = re.search(r"(\d+) selected: (.*)", body)                  # its class mix first
        n_sel = int(several.group(1)) if several else 1
        assert 1 <= n_sel <= len(inside) + 3 and "most similar images" in body  # WebGL's box edges differ by a pixel
        if several:
            assert sum(int(n) for n in re.findall(r" (\d+)(?:,|$)", several.group(2))) == n_sel
        # the selection's pictures (at most 12; one point is the chosen image itself) and the neighbours, each set
        # one block of inlined pictures (ui.tiles)
        assert page.locator("[data-testid=emb-selected] img").count() == (min(12, n_sel) if n_sel > 1 else 0)
        assert page.locator("[data-testid=emb-neighbours] img").count() == 8
        assert page.locator("[data-testid=emb-neighbours] figcaption").first.inner_text()[:2] in ("✓ ", "✗ ")
        assert "<" not in (page.locator("[data-testid=emb-neighbours] img").first.get_attribute("alt") or "<")
        page.screenshot(path=str(SCREENSHOT_DIR / "embeddings_selected.png"))


def test_clicking_a_point_on_the_embedding_map_shows_it_and_its_neighbours(server):
    with browser_page(1400, 1200) as page:
        pts, (left, top, right, bottom) = _open_embedding_map(page, server)
        d = np.hypot(pts[:, None, 0] - pts[None, :, 0], pts[:, None, 1] - pts[None, :, 1])
        np.fill_diagonal(d, np.inf)
        gap = d.min(1)
        away_from_edges = ((pts[:, 0] > left + 40) & (pts[:, 0] < right - 150) &  # the legend is on the right
                           (pts[:, 1] > top + 40) & (pts[:, 1] < bottom - 10))
        gap[~away_from_edges] = -1
        i = int(gap.argmax())
        pt = {"x": pts[i, 0], "y": pts[i, 1], "id": int(pts[i, 2])}
        assert gap[i] > 6  # no other point under the cursor
        page.mouse.move(pt["x"], pt["y"])
        page.wait_for_timeout(300)
        page.mouse.click(pt["x"], pt["y"])
        page.wait_for_function(f"() => document.body.innerText.includes('share the class of #{pt['id']}')",
                               timeout=60000)
        wait_idle(page, 60)
        body = page.inner_text("body")
        assert not re.search(r"\d+ selected", body) and "most similar images" in body   # one point: shown once
        assert page.locator("[data-testid=emb-point] figcaption").first.inner_text().startswith(f"#{pt['id']} ")
        page.screenshot(path=str(SCREENSHOT_DIR / "embeddings_clicked.png"))


def test_training_from_the_browser_shows_a_growing_curve(server):
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    with browser_page(1400, 1300) as page:
        page.goto(server + "/train")
        page.wait_for_selector("text=Pretrain a masked autoencoder", timeout=60000)
        wait_idle(page, 60)
        page.get_by_role("textbox", name="Run name").fill("browser_run")
        page.get_by_role("textbox", name="Run name").press("Enter")
        wait_idle(page, 60)
        page.get_by_role("button", name="Start training").click()
        page.wait_for_selector("text=browser_run — running", timeout=60000)

        def points():
            return page.evaluate("() => { const gd = document.querySelector('.js-plotly-plot');"
                                 " return gd ? gd.data[0].x.length : 0; }")
        page.wait_for_function("() => { const gd = document.querySelector('.js-plotly-plot');"
                               " return gd && gd.data[0].x.length >= 2; }", timeout=120000)
        n1 = points()
        page.wait_for_function(f"() => {{ const gd = document.querySelector('.js-plotly-plot');"
                               f" return gd && gd.data[0].x.length > {n1}; }}", timeout=120000)
        page.wait_for_selector("text=Held-out images", timeout=120000)
        page.screenshot(path=str(SCREENSHOT_DIR / "train_running.png"))
        page.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop").click()
        page.wait_for_selector("text=browser_run — stopped", timeout=120000)


def test_image_upload_converts_and_bad_upload_keeps_the_previous_image(server, tmp_path):
    import numpy as np
    from PIL import Image
    colour = tmp_path / "colour.png"
    Image.fromarray((np.random.default_rng(0).random((90, 120, 3)) * 255).astype("uint8")).save(colour)
    bad = tmp_path / "notes.png"
    bad.write_text("this is not a picture")
    with browser_page() as page:
        page.goto(server)
        page.wait_for_selector('[data-testid="mae-painter"]', timeout=60000)
        wait_idle(page)
        page.get_by_test_id("stSidebar").get_by_text("Upload", exact=True).last.click()
        wait_idle(page)
        page.get_by_test_id("stSidebar").locator('input[type="file"]').last.set_input_files(str(colour))
        page.wait_for_selector("text=Colour: converted to luminance", timeout=60000)
        wait_idle(page)
        assert "Image: upload: colour.png" in page.inner_text("body")
        page.get_by_test_id("stSidebar").locator('input[type="file"]').last.set_input_files(str(bad))
        page.wait_for_selector("text=notes.png is not an image PIL can read", timeout=60000)
        wait_idle(page)
        body = page.inner_text("body")
        assert "Still showing the previous image" in body and "Image: upload: colour.png" in body


def test_mask_ratio_page_draws_its_figures(server):
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    with browser_page(1400, 1100) as page:
        page.goto(server + "/ratios")
        # a first page shows its chart as a picture and keeps it (no plotly loaded) until the pointer is on it; then
        # the interactive chart takes its place (ui.charts): the box is never empty on the way and keeps its height
        box = '[class*="st-key-chartbox_chart_curve"]'
        page.wait_for_selector(f'{box} [data-testid="stImage"] img', timeout=240000)
        wait_idle(page, 240)
        page.wait_for_timeout(2000)
        assert not page.query_selector(".js-plotly-plot")
        page.hover(box)
        seen = page.evaluate(f"""async () => {{
          const seen = [];
          for (let i = 0; i < 300 && !document.querySelector('{box} .js-plotly-plot'); i++) {{
            const b = document.querySelector('{box}');
            const img = b && b.querySelector('[data-testid="stImage"] img');
            seen.push(img && img.offsetHeight ? 'picture ' + b.offsetHeight : 'nothing ' + (b ? b.offsetHeight : 0));
            await new Promise(r => setTimeout(r, 50));
          }}
          const b = document.querySelector('{box}');
          seen.push('plotly ' + b.offsetHeight);
          return seen;
        }}""")
        assert seen[-1].startswith("plotly") and not [s for s in seen if s.startswith("nothing")], seen
        assert len({s.split()[1] for s in seen}) == 1, seen                         # the same height throughout
        wait_idle(page, 240)
        n_traces = page.evaluate("() => document.querySelector('.js-plotly-plot').data.length")
        # a curve for each of the three strategies and, dashed, the classical baseline on the same masks; the bands
        # are off until asked for
        assert n_traces == 6
        # one image at four ratios: masked above filled in, each picture inlined in one block with its caption
        strip = page.locator("[data-testid=ratio-strip]")
        assert strip.locator("img").count() == 8
        caps = strip.locator("figcaption").all_inner_texts()
        assert caps[0] == "13/49 hidden (27%)" and caps[1].startswith("MSE ") and caps[-2] == "45/49 hidden (92%)"
        page.get_by_text("Show the spread (± 1 sd)").click()
        page.wait_for_function("() => document.querySelector('.js-plotly-plot').data.length === 9", timeout=60000)
        wait_idle(page, 240)
        page.screenshot(path=str(SCREENSHOT_DIR / "ratios_curves.png"))
        page.get_by_text("Pretraining ratio", exact=True).click()
        page.wait_for_selector("text=Error by pretraining ratio", timeout=240000)
        wait_idle(page, 240)
        side = page.locator("[data-testid=pretrained-side-by-side] figcaption").all_inner_texts()
        assert side[0] == "original" and len(side) >= 3
        assert all(re.fullmatch(r"\d+%\nMSE 0\.\d{3}", c) for c in side[1:]), side
        page.get_by_text("Show the heatmap", exact=False).click()
        page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].some("
                               "gd => gd.data.some(t => t.type === 'heatmap'))", timeout=240000)
        wait_idle(page, 240)
        page.screenshot(path=str(SCREENSHOT_DIR / "ratios_pretraining.png"), full_page=True)
