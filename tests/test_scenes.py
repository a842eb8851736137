import json

import pytest

from mae_core.classroom.scenes import SceneError, decode_mask, encode_mask, load_scenes, parse, to_params

MODELS = {"fmnist_r75": 49, "fmnist_r25": 49, "photo64_r75": 64}


def test_mask_round_trip_and_length_errors():
    for n in (49, 64, 196):
        mask = [(i * 7) % 3 == 0 for i in range(n)]
        text = encode_mask(mask)
        assert len(text) == -(-n // 4) and decode_mask(text, n) == [int(v) for v in mask]
    assert encode_mask([1, 0, 0, 0, 0, 1]) == "84"
    with pytest.raises(ValueError, match="49 cells \\(13 hex digits\\), the link has 16"):
        decode_mask("0" * 16, 49)
    with pytest.raises(ValueError, match="hex digits"):
        decode_mask("zz", 49)
    with pytest.raises(ValueError, match="padding"):
        decode_mask("000000000000f", 49)   # bits 49..51 set


def test_parse_keeps_good_values_and_explains_each_bad_one():
    good = parse({"m": "fmnist_r75", "img": "fm:12", "mask": encode_mask([1] * 10 + [0] * 39), "cmp": "fmnist_r25",
                  "pt": "5", "sec": "pre"}, MODELS, photos=("astronaut",))
    assert (good.model, good.image, sum(good.mask), good.compare, good.point, good.section) == \
        ("fmnist_r75", ("fm", 12), 10, "fmnist_r25", 5, "pre") and not good.notices
    bad = parse({"m": "gone_model", "img": "fm:99999", "st": "spiral", "r": "2", "s": "x", "mask": "00",
                 "cmp": "../etc", "sec": "x"}, MODELS, photos=("astronaut",))
    assert bad.model is None and bad.image is None and bad.strategy is None and bad.ratio is None
    assert bad.mask is None and bad.compare is None and bad.section is None
    text = " ".join(bad.notices)
    for key in ("m=", "img=", "st=", "r=", "s=", "mask=", "cmp=", "sec="):
        assert "Ignored " + key in text, key
    # a mask for another grid than the named model's: dropped, the model kept
    stale = parse({"m": "photo64_r75", "mask": encode_mask([1] * 49)}, MODELS)
    assert stale.model == "photo64_r75" and stale.mask is None and "64 cells" in stale.notices[0]
    assert parse({"img": "ph:astronaut", "r": "0.5"}, MODELS, photos=("astronaut",)).image == ("ph", "astronaut")
    assert parse({"r": "0.73"}, MODELS).ratio == 0.75                   # snapped to the sliders' 0.05 grid


def test_to_params_round_trips_through_parse():
    mask = [0] * 49
    mask[40] = 1
    q = to_params(model="fmnist_r75", image=("fm", 3), mask=mask, compare="fmnist_r25", point=7)
    sc = parse(q, MODELS)
    assert (sc.model, sc.image, sc.mask, sc.compare, sc.point) == ("fmnist_r75", ("fm", 3), mask, "fmnist_r25", 7)
    g = parse(to_params(strategy="grid", ratio=0.75, seed=4), MODELS)
    assert (g.strategy, g.ratio, g.seed) == ("grid", 0.75, 4)


def test_bundled_scenes_are_valid_and_name_bundled_models():
    from mae_core.checkpoints import list_bundled
    names = {c["name"]: 49 for c in list_bundled()}
    scenes = load_scenes()
    assert len(scenes) >= 3
    for s in scenes:
        sc = parse(s["params"], names, photos=())
        assert not sc.notices, (s["title"], sc.notices)
        assert s["page"] in ("", "ratios", "embeddings", "train")


def test_a_broken_scenes_file_is_a_clear_error(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"scenes": [{"title": "x", "params": {"zoom": "2"}}]}))
    with pytest.raises(SceneError, match="unknown parameters \\['zoom'\\]"):
        load_scenes(p)
    p.write_text("{")
    with pytest.raises(SceneError, match="cannot read"):
        load_scenes(p)


def test_numbers_too_long_for_int_are_a_stale_link_notice_not_an_error():
    # Python refuses int() of 4,300+ digits (ValueError: Exceeds the limit); a link is visitor text
    nines = "9" * 5000
    sc = parse({"img": "fm:" + nines, "s": nines, "pt": nines, "r": "0." + nines}, {"fmnist_r75": 49},
                      n_fmnist=1600)
    assert sc.image is None and sc.seed is None and sc.point is None and sc.ratio is None
    assert [n.split("=")[0] for n in sc.notices] == ["Ignored img", "Ignored r", "Ignored s", "Ignored pt"]
    assert all(len(n) < 200 for n in sc.notices)   # the notice quotes the value cut short
