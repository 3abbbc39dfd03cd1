import numpy as np
import pytest

from mdsample.errors import ConfigError
from mdsample.plugins.image import glyphs


def test_split_holds_out_whole_fonts():
    split = glyphs.font_split(glyphs.DEFAULT_CLASSES)
    assert split["train"] and split["eval"]
    assert not set(split["train"]) & set(split["eval"])
    assert not set(glyphs.EXCLUDED_FONTS) & set(split["train"] + split["eval"])


def test_rendering_is_deterministic_and_varied():
    fonts = glyphs.font_split("AB")["train"][:2]
    a = glyphs.render(fonts, "AB", 3, seed=5, workers=1)
    b = glyphs.render(fonts, "AB", 3, seed=5, workers=1)
    c = glyphs.render(fonts, "AB", 3, seed=6, workers=1)
    assert a.images.shape == (2 * 2 * 3, glyphs.SIZE, glyphs.SIZE) and a.images.dtype == np.uint8
    assert np.array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    assert a.labels.tolist() == [0, 0, 0, 1, 1, 1] * 2
    assert a.fonts.tolist() == [fonts[0]] * 6 + [fonts[1]] * 6
    assert (a.images.reshape(len(a), -1).max(axis=1) > 200).all()  # every image shows a glyph
    assert not np.array_equal(a.images[0], a.images[1])  # variants differ


def test_pool_and_serial_rendering_agree():
    fonts = glyphs.font_split("AB")["train"][:2]
    serial = glyphs.render(fonts, "AB", 2, workers=1)
    pooled = glyphs.render(fonts, "AB", 2, workers=2)
    assert np.array_equal(serial.images, pooled.images)


def test_split_is_cached(glyph_cache):
    first = glyphs.load_split("eval", "XY", 2)
    files = list((glyph_cache / "image").glob("glyphs-eval-*.npz"))
    assert len(files) >= 1
    again = glyphs.load_split("eval", "XY", 2)
    assert np.array_equal(first.images, again.images) and np.array_equal(first.labels, again.labels)


@pytest.mark.parametrize("classes", ["", "AA", "A B"])
def test_bad_classes_are_config_errors(classes):
    with pytest.raises(ConfigError, match="domain.classes"):
        glyphs.check_classes(classes)


def test_bad_variants_are_config_errors():
    with pytest.raises(ConfigError, match="variants"):
        glyphs.render(glyphs.font_split("A")["train"][:1], "A", 0)
