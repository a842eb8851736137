"""The sidebar's image picker: a Fashion-MNIST picture (by class and number), a bundled photo, or an upload,
prepared for the model in use."""
from __future__ import annotations

import hashlib
import random

import streamlit as st

from mae_core.data import (FASHION_MNIST_CLASSES, PHOTO_ALL, PHOTO_HELDOUT, DataError, array_to_pil, open_image,
                           prepare_image)

from .caches import fmnist_subset, photo
from .session import keep
from .text import error

keep("img_source_1", "img_source_3", "img_class", "img_index", "img_photo")

def _set_image(key: str, tensor, label: str, note: str = ""):
    st.session_state["image"] = {"key": key, "tensor": tensor, "label": label, "note": note}


def image_picker(config):
    """Choose an image for the model; returns (tensor (C, H, W) in [0, 1], label). A bad upload leaves the
    previous image in place."""
    size, ch = config.img_size, config.in_chans
    sources = ["Fashion-MNIST", "Photos", "Upload"]
    default = 0 if ch == 1 else 1
    with st.sidebar:
        st.subheader("Image")
        source = st.radio("Image source", sources, index=default, key=f"img_source_{ch}", horizontal=True,
                          label_visibility="collapsed")
        if source == "Fashion-MNIST":
            ds = fmnist_subset()
            cls = st.selectbox("Class", ["any"] + list(FASHION_MNIST_CLASSES), key="img_class")
            pool = list(range(len(ds))) if cls == "any" else \
                [i for i, y in enumerate(ds.labels.tolist()) if y == FASHION_MNIST_CLASSES.index(cls)]
            if st.button("Random image", icon=":material/casino:", key="img_random"):
                st.session_state["img_index"] = random.randrange(len(pool))
            st.session_state["img_index"] = min(st.session_state.get("img_index", 0), len(pool) - 1)
            idx = st.number_input("Image number", 0, len(pool) - 1, key="img_index",
                                  help="Counted within the chosen class" if cls != "any" else None)
            i = pool[int(idx)]
            t = prepare_image(_subset_pil(ds, i), size, ch)
            name = FASHION_MNIST_CLASSES[int(ds.labels[i])]
            # one number, the one the visitor typed, and what it counts
            label = (f"Fashion-MNIST {name} #{int(idx)} of {len(pool)}" if cls != "any" else
                     f"Fashion-MNIST #{int(idx)} of {len(pool)} ({name})")
            _set_image(f"fmnist:{i}:{size}:{ch}", t, label)
        elif source == "Photos":
            name = st.selectbox("Photo", PHOTO_ALL, key="img_photo",
                                format_func=lambda n: f"{n} (held out from training)" if n in PHOTO_HELDOUT else n,
                                help="The bundled photo model trained on crops of the others")
            _set_image(f"photo:{name}:{size}:{ch}", prepare_image(photo(name), size, ch), f"photo: {name}")
        else:
            up = st.file_uploader("Image file", type=None, key="img_upload", max_upload_size=50,
                                  help="PNG, JPEG, GIF, TIFF, WebP, BMP… resized and centre-cropped to the model's size")
            if up is not None:
                key = f"upload:{hashlib.sha256(up.getbuffer()).hexdigest()[:16]}:{size}:{ch}"
                cur = st.session_state.get("image")
                if not cur or cur["key"] != key:
                    try:
                        pil = open_image(up)  # its error messages name the file
                        grey = pil.mode in ("1", "L", "LA", "I", "I;16", "F")
                        note = f"Resized from {pil.size[0]}×{pil.size[1]} to {size}×{size}. "
                        if grey and ch == 3:
                            note += "Greyscale: its grey level fills all three channels of this RGB model."
                        elif not grey and ch == 1:
                            note += "Colour: converted to luminance for this greyscale model."
                        _set_image(key, prepare_image(pil, size, ch), f"upload: {up.name}", note)
                    except DataError as e:
                        error("", e)
                        if cur:
                            st.caption("Still showing the previous image.")
        cur = st.session_state.get("image")
        if cur is None or not cur["key"].endswith(f":{size}:{ch}"):
            # the model changed size or channels: bring the image along
            _set_image(f"photo:astronaut:{size}:{ch}" if ch == 3 else f"fmnist:0:{size}:{ch}",
                       prepare_image(photo("astronaut"), size, ch) if ch == 3 else
                       prepare_image(_subset_pil(fmnist_subset(), 0), size, ch),
                       "photo: astronaut" if ch == 3 else "Fashion-MNIST #0")
            cur = st.session_state["image"]
        if cur.get("note") and source == "Upload":
            st.caption(cur["note"])
    return cur["tensor"], cur["label"], cur["key"]


def _subset_pil(ds, i: int):
    return array_to_pil((ds.images[i, 0].numpy() * 255).round().astype("uint8"))
