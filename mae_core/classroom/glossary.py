"""The words MAE Explorer uses, each in one plain sentence: one place for the help tooltips of every page (and the
lesson). ``explain("patch", "token")`` joins the sentences of several terms for one tooltip."""
from __future__ import annotations

TERMS: dict[str, str] = {
    "patch": "A patch is one small square of the picture; the picture is cut into a grid of them.",
    "token": "A token is one patch turned into a list of numbers that the transformer works on.",
    "encoder": "The encoder is the part that looks at the visible patches and describes each one in numbers.",
    "decoder": "The decoder is the small part that takes the encoder's description and draws every patch back.",
    "mask token": "A mask token is one shared, learned placeholder that stands in for each hidden patch in the "
                  "decoder.",
    "mask ratio": "The mask ratio is the share of patches that are hidden: 0.75 hides three patches in four.",
    "reconstruction target": "The reconstruction target is what the model is asked to draw: the plain pixels, or "
                             "each patch's pixels normalised by its own mean and spread (norm-pix).",
    "norm-pix": "Norm-pix means each patch is scored on its shape only: its pixels minus their mean, divided by "
                "their spread, so a model is not rewarded for guessing brightness.",
    "linear probe": "A linear probe is the simplest classifier (one straight cut per class) trained on the frozen "
                    "encoder's features: it tests how easily the classes can be told apart.",
    "kNN": "kNN asks an image's nearest neighbours in feature space what they are, and takes the most common "
           "answer.",
    "fine-tuning": "Fine-tuning trains the whole encoder a little more on labelled images, instead of keeping it "
                   "frozen.",
    "t-SNE": "t-SNE draws high-dimensional points on a flat map so that points close together stay close; distances "
             "between far-apart groups mean little.",
    "cls token": "The cls token is one extra token with no patch of its own; it gathers a summary of the whole "
                 "image.",
    "attention": "Attention is how much one token looks at each other token when it updates itself.",
    "rollout": "Attention rollout multiplies the attention of every block together, a rough picture of how "
               "information flows from the patches over the whole stack.",
    "inpainting": "Inpainting fills hidden pixels from their neighbours with no learning at all: the classical "
                  "baseline the model must beat.",
}


def explain(*terms: str) -> str:
    """The sentences of ``terms``, in order, as one tooltip. An unknown term is a KeyError (a typo in a page)."""
    return " ".join(TERMS[t] for t in terms)
