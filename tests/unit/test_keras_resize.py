"""A Keras mode feeds the network what Keras would: its resize recomputed from the reference formulas on a
1024-pixel image, as tf.image.resize (bilinear, half-pixel centres, no antialiasing) and load_img (nearest)."""
import io

import numpy as np
import pytest
from PIL import Image

from harness.data.cache import resize_image
from harness.data.images import decode_bytes
from harness.zoo.lookup import preprocessing_for


def tf_bilinear(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """tf.image.resize(method='bilinear', antialias=False): output pixel o samples the input at
    (o + 0.5) * in / out - 0.5, between floor and floor + 1, both clamped to the image (float result)."""
    def axis(inputs: int, outputs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = (np.arange(outputs) + 0.5) * inputs / outputs - 0.5
        low = np.floor(x)
        return np.clip(low, 0, inputs - 1).astype(int), np.minimum(np.ceil(x), inputs - 1).clip(0).astype(int), x - low

    y0, y1, fy = axis(pixels.shape[0], height)
    x0, x1, fx = axis(pixels.shape[1], width)
    p = pixels.astype(np.float64)
    top = p[y0][:, x0] * (1 - fx)[None, :, None] + p[y0][:, x1] * fx[None, :, None]
    bottom = p[y1][:, x0] * (1 - fx)[None, :, None] + p[y1][:, x1] * fx[None, :, None]
    return top * (1 - fy)[:, None, None] + bottom * fy[:, None, None]


def keras_nearest(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """load_img(..., interpolation='nearest'), which calls Pillow's resize with NEAREST: output pixel o takes
    input pixel floor(x_o), x_0 = step / 2 and x_o = x_(o-1) + step in double precision, step = in / out
    (Pillow's ImagingScaleAffine adds the step pixel by pixel, so x_o can fall a rounding error short of
    (o + 0.5) step where that is a whole number)."""
    def axis(inputs: int, outputs: int) -> np.ndarray:
        step = inputs / outputs
        positions = np.cumsum(np.r_[step * 0.5, np.full(outputs - 1, step)])  # sequential sums, as the C loop
        return np.minimum(positions.astype(int), inputs - 1)

    return pixels[axis(pixels.shape[0], height)][:, axis(pixels.shape[1], width)]


def high_frequency(pixels: np.ndarray) -> float:
    """Mean absolute difference between horizontal neighbours: where a GAN's fingerprint lives."""
    return float(np.abs(np.diff(pixels.astype(np.float64), axis=1)).mean())


@pytest.fixture(scope="module")
def photograph() -> Image.Image:
    """A 1024 x 1024 PNG with fine detail (a one-pixel checkerboard over smooth content and noise), decoded as
    the cache decodes every image."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:1024, 0:1024]
    smooth = 128 + 60 * np.sin(x / 37.0)[..., None] * np.cos(y / 53.0)[..., None] * np.array([1.0, 0.7, 0.4])
    pixels = np.clip(smooth + 30 * ((x + y) % 2)[..., None] + rng.normal(0, 8, (1024, 1024, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return decode_bytes(buffer.getvalue())[0]


@pytest.mark.parametrize("mode", ["tf", "caffe", "paper"])
def test_a_keras_mode_resizes_bilinear_as_tf_image_resize(photograph, mode):
    pre = preprocessing_for("MobileNetV2", mode, 224)
    assert pre.resize == "keras" and pre.interpolation == "bilinear"  # Keras' default: image_dataset_from_directory
    ours = resize_image(photograph, pre.resize_key)
    reference = tf_bilinear(np.asarray(photograph), 224, 224)
    assert ours.shape == (224, 224, 3) and ours.dtype == np.uint8
    assert np.abs(ours - reference).max() <= 0.5 + 1e-9  # tf's float result, rounded to the cache's uint8
    assert high_frequency(ours) == pytest.approx(high_frequency(reference), rel=0.01)
    antialiased = np.asarray(photograph.resize((224, 224), Image.Resampling.BILINEAR))  # what the harness did before
    assert high_frequency(ours) > 3 * high_frequency(antialiased)


def test_a_keras_mode_resizes_nearest_as_load_img(photograph):
    pre = preprocessing_for("MobileNetV2", "tf", 224, keras_interpolation="nearest")
    ours = resize_image(photograph, pre.resize_key)
    assert np.array_equal(ours, keras_nearest(np.asarray(photograph), 224, 224))


def test_a_keras_mode_squashes_an_image_that_is_not_square(photograph):
    wide = photograph.crop((0, 0, 1024, 600))
    for interpolation, reference in (("bilinear", tf_bilinear), ("nearest", keras_nearest)):
        ours = resize_image(wide, preprocessing_for("VGG16", "caffe", 96, keras_interpolation=interpolation).resize_key)
        assert np.abs(ours - reference(np.asarray(wide), 96, 96)).max() <= 0.5 + 1e-9


def test_timm_keeps_its_centre_crop_and_the_two_resizes_get_their_own_caches(photograph):
    timm, keras = preprocessing_for("MobileNetV2", "timm", 224), preprocessing_for("MobileNetV2", "tf", 224)
    assert timm.resize == "timm" and timm.crop_pct < 1 and keras.resize_key != timm.resize_key
    from harness.data.cache import cache_key

    assert cache_key("0" * 64, keras.resize_key).endswith("-keras") and not cache_key("0" * 64, timm.resize_key).endswith("-keras")
    assert cache_key("0" * 64, (224, "bilinear", 1.0)) == cache_key("0" * 64, (224, "bilinear", 1.0, "timm"))
