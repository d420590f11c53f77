"""Fusion references follow the images sent, or the run is refused before sending."""

import pytest

from aliyun_image.jobs import follow


@pytest.mark.parametrize("text, filled, out, moved", [
    ("图1的人物站在图3的场景里", [1, 3], "图1的人物站在图2的场景里", {3: 2}),
    ("the person in image 1 stands in the scene of image 3", [1, 3],
     "the person in image 1 stands in the scene of image 2", {3: 2}),
    ("Picture 3 as the background, picture #2 as the subject", [2, 3],
     "Picture 2 as the background, picture #1 as the subject", {3: 2, 2: 1}),
    ("画像3の背景に画像1の人物", [1, 3], "画像2の背景に画像1の人物", {3: 2}),
    ("圖3的背景", [1, 3], "圖2的背景", {3: 2}),
    ("图1 和 图2 融合", [1, 2], "图1 和 图2 融合", {}),
    ("no numbers at all", [2, 3], "no numbers at all", {}),
    ("images should blend; imagery 3 is not a reference", [1, 3],
     "images should blend; imagery 3 is not a reference", {}),
    # ten slots (2.1-pro): 图10 is slot 10, never slot 1 followed by a 0
    ("图10的光线照在图1上", list(range(1, 11)), "图10的光线照在图1上", {}),
    ("图10的光线照在图1上", [1, 4, 10], "图3的光线照在图1上", {10: 3}),
])
def test_references_follow_the_filled_slots(text, filled, out, moved):
    refs = follow(text, filled)
    assert refs.ok and refs.instruction == out and refs.renumbered == moved


@pytest.mark.parametrize("text, filled, missing", [
    ("图1的人物站在图2的场景里", [1, 3], (2,)),
    ("image 4 and image 1", [1, 2, 3], (4,)),
    ("图12 is not 图1", [1], (12,)),
    ("图2", [], (2,)),
    ("pic 3 then img 5", [1, 2], (3, 5)),
])
def test_a_reference_to_an_empty_slot_is_reported(text, filled, missing):
    refs = follow(text, filled)
    assert not refs.ok and refs.missing == missing and refs.instruction == text
