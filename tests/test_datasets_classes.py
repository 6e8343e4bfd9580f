"""Class sets and label merges, each merge checked against an obvious rule written independently."""
import numpy as np
import pytest

from datasources.base import IGNORE
from datasources.classes import (BEDROOM_19, BIRD_11, CAR_5, CAR_12, CAR_12_TO_5, CAR_20, CAR_20_TO_12, CAT_16,
                              CELEBA_19_TO_8, CELEBA_MASK_8, FACE_34, FACE_34_TO_8, PASCAL_CAR_TO_5)
from fixtures.celebamask import TO_8


def test_class_counts_match_the_paper_names():
    assert [len(c) for c in (CAR_20, FACE_34, CAT_16, BIRD_11, BEDROOM_19, CAR_12, CAR_5, CELEBA_MASK_8)] == \
        [20, 34, 16, 11, 19, 12, 5 + 1, 8]


def test_car_20_to_12_equals_the_official_index_rule():
    """The official reduction works on indices: 0 stays 0, listed indices get a part, every other one is car."""
    official = {4: "head light", 14: "tail light", 10: "licence plate", 19: "wind shield", 15: "wheel", 5: "door",
                8: "handle", 17: "wheelhub", 18: "window", 11: "mirror"}
    labels = np.arange(20)
    expected = [CAR_12.index("background" if i == 0 else official.get(i, "car_body")) for i in labels]
    assert CAR_20_TO_12(labels).tolist() == expected


def test_car_12_to_5():
    merged = {n: CAR_5.names[CAR_12_TO_5.lut[i]] for i, n in enumerate(CAR_12.names)}
    assert merged["wheelhub"] == "wheel" and merged["wind shield"] == "window" and merged["handle"] == "body"
    assert merged["tail light"] == merged["head light"] == "light" and merged["licence plate"] == "plate"


@pytest.mark.parametrize("name, expected", [
    ("head***eye***iris", "eye"), ("head***eye***botton lid", "eye"), ("head***ear***lobule", "ear"),
    ("head***mouth***teeth", "mouth"), ("head***nose***nostril", "nose"), ("head***hair***sideburns", "hair"),
    ("head***eyebrow", "eyebrow"), ("head***neck", "background"), ("head***moustache", "skin"),
    ("head***cheek", "skin"), ("head", "skin"), ("background", "background")])
def test_face_34_to_8(name, expected):
    assert CELEBA_MASK_8.names[FACE_34_TO_8.lut[FACE_34.index(name)]] == expected


def test_face_34_to_8_by_prefix_rule():
    def rule(name):
        for prefix, target in (("head***eyebrow", "eyebrow"), ("head***eye", "eye"), ("head***ear", "ear"),
                               ("head***mouth", "mouth"), ("head***nose", "nose"), ("head***hair", "hair")):
            if name.startswith(prefix):
                return target
        return "background" if name in ("background", "head***neck") else "skin"
    assert [CELEBA_MASK_8.names[i] for i in FACE_34_TO_8.lut[:34]] == [rule(n) for n in FACE_34.names]


def test_celeba_19_to_8_is_the_published_merge():
    merged = CELEBA_19_TO_8(np.arange(1, 19))
    assert [CELEBA_MASK_8.names[i] for i in merged] == [TO_8[n] for n in CELEBA_19_TO_8.source.names[1:]]


def test_pascal_parts_to_5():
    names = PASCAL_CAR_TO_5.source.names
    merged = {n: CAR_5.names[PASCAL_CAR_TO_5.lut[i]] for i, n in enumerate(names)}
    assert {n for n, t in merged.items() if t == "body"} == {
        "car", "frontside", "leftside", "rightside", "backside", "roofside", "leftmirror", "rightmirror", "door"}
    assert merged["fliplate"] == merged["bliplate"] == "plate" and merged["headlight"] == "light"


def test_merges_keep_ignore():
    labels = np.array([[0, IGNORE]])
    for merge in (CAR_20_TO_12, CAR_12_TO_5, FACE_34_TO_8, CELEBA_19_TO_8, PASCAL_CAR_TO_5):
        assert merge(labels).tolist() == [[0, IGNORE]]
