"""The lesson: the paper's story in nine steps on the loaded model (the sidebar's model and picture), each a plain
headline, one live interactive, a few short sentences and the numbers under Details. Back / Next and the arrow keys
move; the step is in the address (?step=3) so a teacher can bookmark or share it."""
from __future__ import annotations

import numpy as np
import streamlit as st

import lesson_evidence as ev
import lesson_steps as ls
from ui.images import image_picker
from ui.pickers import model_picker
from ui.scenes import image_id, model_id, scene_to_url
from ui.session import presenting
from ui.text import guarded, plain

from mae_core.classroom.glossary import explain
from mae_core.classroom.lesson import STEPS, step_from_param
from mae_core.masking import make_mask

BODIES = {"patches": ls.patches, "guess": ls.guess, "encoder": ls.encoder, "decoder": ls.decoder,
          "ratio": ev.ratio, "learned": ev.learned, "pretraining": ev.pretraining, "finetune": ev.finetune,
          "yourturn": ev.your_turn}

# Left and right arrows press Back and Next, unless the key belongs to a control (a slider, the painter, a radio)
_KEYS_JS = """<script>
if (!window.__maeLessonKeys) {
  window.__maeLessonKeys = true;
  // capture phase: before a control's own handler. Answers (pills), toggles and buttons give the arrows to the
  // lesson; text boxes, sliders, the painter, lists and radio groups keep them (they move with the arrows)
  document.addEventListener('keydown', (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
    if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
    const btn = document.querySelector(e.key === 'ArrowRight' ? '.st-key-lesson_next button'
                                                               : '.st-key-lesson_back button');
    if (!btn) return;                                   // not the lesson page
    const t = e.target;
    const own = t && t.closest && t.closest('input:not([type="checkbox"]), textarea, select, ' +
        '[contenteditable="true"], [role="slider"], [role="grid"], [role="radiogroup"], [role="radio"], ' +
        '[role="tablist"], [role="combobox"], [role="listbox"], [data-baseweb="select"]');
    const answer = t && t.closest && t.closest('[data-testid="stButtonGroup"]');
    if (own && !answer) return;
    e.preventDefault(); e.stopPropagation();
    if (!btn.disabled) btn.click();
  }, true);
}
</script>"""

ss = st.session_state
model, card, model_path = model_picker()
cfg = model.config
image, image_label, image_key = image_picker(cfg)
big = presenting()

n = len(STEPS)
_param = st.query_params.get("step")
if "lesson_step" not in ss or (_param is not None and ss.get("lesson_step_param") != _param):  # back from a page
    ss.lesson_step, notice = step_from_param(_param, n)   # a bookmark or a shared link (keeps its step)
    if notice:
        st.warning(plain(notice), icon=":material/link_off:")


def go(k: int) -> None:
    ss.lesson_step = max(0, min(n - 1, k))


i = int(ss.lesson_step)
ss.lesson_step_param = st.query_params["step"] = str(i + 1)
scene_to_url(model=model_id(model_path), image=image_id(image_key))
st.html(_KEYS_JS, unsafe_allow_javascript=True)

step = STEPS[i]
nav = st.columns([1, 4.2, 1], vertical_alignment="center")
nav[0].button("Back", icon=":material/arrow_back:", key="lesson_back", on_click=go, args=(i - 1,), disabled=i == 0,
              width="stretch")   # no tooltip: it would sit on the headline while the pointer rests on the button
nav[2].button("Next", icon=":material/arrow_forward:", key="lesson_next", on_click=go, args=(i + 1,),
              disabled=i == n - 1, width="stretch", type="primary")
dots = " ".join(f"<span style='display:inline-block;width:10px;height:10px;border-radius:5px;margin:0 2px;"
                f"background:{'#4f46e5' if k == i else '#c7d2fe' if k < i else '#e5e7eb'}'></span>" for k in range(n))
nav[1].html(f"<div data-testid='lesson-progress' style='text-align:center;font-size:0.9rem;color:#4b5563'>"
            f"Lesson · step {i + 1} of {n}: {step.title} · keys ← →<br>{dots}</div>")
st.subheader(step.headline, anchor=False, help=explain(*step.terms) if step.terms else None)

# the lesson's mask: three patches in four hidden at random, the same for every step, so a step's picture follows
mask = make_mask("random", 1, cfg.grid_size, 0.75, seed=0)[0].numpy().astype(bool)
cx = ls.Ctx(model=model, card=card, path=str(model_path), image=image, image_key=image_key, image_label=image_label,
            mask=np.asarray(mask), big=big)
guarded(BODIES[step.key])(cx)
