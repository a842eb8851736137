"""The glossary: one plain sentence a term, used by the pages' help tooltips."""
import pytest

from mae_core.classroom.glossary import TERMS, explain

NEEDED = ("patch", "token", "encoder", "decoder", "mask token", "mask ratio", "reconstruction target", "norm-pix",
          "linear probe", "kNN", "fine-tuning", "t-SNE", "cls token", "attention", "rollout", "inpainting")


def test_every_term_the_pages_use_has_one_short_plain_sentence():
    assert set(NEEDED) <= set(TERMS)
    for term, text in TERMS.items():
        assert text.endswith(".") and text.count(". ") <= 1 and len(text.split()) <= 35, term


def test_explain_joins_terms_in_order_and_refuses_a_typo():
    assert explain("patch", "token") == TERMS["patch"] + " " + TERMS["token"]
    with pytest.raises(KeyError):
        explain("pach")


def test_the_pages_tooltips_carry_the_glossary(app_page):
    from pathlib import Path
    views = Path(__file__).resolve().parent.parent / "app" / "views"
    app = app_page("reconstruct.py")
    assert TERMS["mask ratio"] in app.slider(key="mask_ratio").help
    assert TERMS["norm-pix"] in next(m.help for m in app.metric if m.label == "Shape MSE")
    app.switch_page(str(views / "train.py")).run()
    assert TERMS["norm-pix"] in app.toggle(key="tr_normpix").help and TERMS["mask ratio"] in app.slider(key="tr_ratio").help
    app.switch_page(str(views / "embeddings.py"))
    app.session_state["emb_method"] = "pca"
    app.run()
    assert TERMS["cls token"] in app.selectbox(key="emb_pool").help and TERMS["t-SNE"] in app.radio(key="emb_method").help
