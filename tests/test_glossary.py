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
    """The Train page's; Reconstruct's and Embeddings' are checked where their tests open them
    (test_opens_on_a_working_page, test_bad_folder_is_a_message)."""
    app = app_page("train.py")
    assert TERMS["norm-pix"] in app.toggle(key="tr_normpix").help and TERMS["mask ratio"] in app.slider(key="tr_ratio").help
