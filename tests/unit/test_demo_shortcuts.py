"""The demo's classes differ only by the generator's fingerprint: no simple per-image statistic separates them.

Each statistic gets its best threshold (and direction) on the train split; applied to the test split it
must stay near chance. A statistic that beats that is a shortcut a detector would learn instead of the
generator's artefact (colour, a dark frame, less high-frequency energy).

The fingerprint is a 2x2 gain pattern that every image carries with one strength: what tells a fake is
that its pattern is its generator's (harness.data.demo). The last test recomputes it from the pixels and
checks that it tells the classes apart; it prints, per seed, how well it does and how well a generic noise
statistic that reads it does (`pytest tests/unit/test_demo_shortcuts.py -s -k fingerprint`, quoted in the
README). Every test runs on several demo seeds: each seed draws its own generator.
"""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression

from harness.data import DEMO
from harness.data.demo import PHASE_GAIN, generator_patterns, make_demo

GREY_TOLERANCE = 2  # max channel difference, in uint8 steps, of an image counted as grey
MAX_TEST_ACCURACY = 0.60
SEEDS = (0, 1, 2, 3)
# One pytest-xdist worker runs the module: the demos its tests share are built once, not once per worker.
pytestmark = pytest.mark.xdist_group("demo-shortcuts")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """demo(seed, generators, size): the demo's folder, built once per module for each setting."""
    built: dict[tuple, Path] = {}

    def get(seed: int, generators: tuple[str, ...] = ("upsampler",), size: int = DEMO["size"]) -> Path:
        if (seed, generators, size) not in built:
            out = tmp_path_factory.mktemp(f"demo-{seed}") / "demo"
            built[seed, generators, size] = make_demo(out, per_class=DEMO["per_class"], size=size, seed=seed,
                                                      generators=generators).parent
        return built[seed, generators, size]
    return get


def high_frequency_share(luminance: np.ndarray) -> np.ndarray:
    """Per image (luminance: images x rows x columns), the share of the energy above half the Nyquist
    frequency (0.25 of 0.5 cycles per pixel)."""
    power = np.abs(np.fft.fft2(luminance - luminance.mean(axis=(1, 2), keepdims=True))) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(luminance.shape[1]), np.fft.fftfreq(luminance.shape[2]), indexing="ij")
    return power[:, np.hypot(fx, fy) > 0.25].sum(axis=1) / np.maximum(power.sum(axis=(1, 2)), 1e-12)


def image_statistics(paths: list[Path]) -> pd.DataFrame:
    """A row of statistics per image, computed on all of them at once (the demo's images share one size),
    channels first: numpy reduces over a leading axis of three far faster than over a trailing one."""
    rgb = np.stack([np.asarray(Image.open(path).convert("RGB"), dtype=np.float64).transpose(2, 0, 1) for path in paths])
    brightest, darkest = rgb.max(axis=1), rgb.min(axis=1)
    channel_spread = brightest - darkest
    frame = np.concatenate([rgb[:, :, 0], rgb[:, :, -1], rgb[:, :, 1:-1, 0], rgb[:, :, 1:-1, -1]], axis=2)
    luminance = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    phases = [luminance[:, row::2, column::2] for row in range(2) for column in range(2)]
    return pd.DataFrame({
        "is_grey": (channel_spread.max(axis=(1, 2)) <= GREY_TOLERANCE).astype(float),
        "border_mean": frame.mean(axis=(1, 2)),
        "mean_intensity": rgb.mean(axis=(1, 2, 3)),
        "saturation": (channel_spread / np.maximum(brightest, 1)).mean(axis=(1, 2)),
        "high_frequency_share": high_frequency_share(luminance),
        # The same within each of the four pixel phases: the content's own sharpness, blind to the
        # phase gains (the fingerprint).
        "content_sharpness": np.mean([high_frequency_share(phase) for phase in phases], axis=0),
        "png_bytes": [float(path.stat().st_size) for path in paths],
    })


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
    stats = image_statistics([dataset / p for p in manifest["path"]])
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


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("generators, size", [
    (("upsampler",), DEMO["size"]),
    (("upsampler",), 64),
    (("bilinear_conv",), 64),
])
def test_no_simple_statistic_separates_real_from_fake(demo, generators, size, seed):
    table = shortcut_table(demo(seed, generators, size))
    print(f"\n{generators[0]} at {size} px, seed {seed}:\n{table.to_string(float_format=lambda v: f'{v:.3f}')}")
    shortcuts = table[table["test_accuracy"] > MAX_TEST_ACCURACY]
    assert shortcuts.empty, f"shortcuts beside the generator's artefact:\n{shortcuts}"


def phase_pattern(path: Path) -> np.ndarray:
    """The image's 2x2 gain pattern, estimated: each pixel phase's mean brightness over the image's (none in
    a black crop, such as the dark corner of a photograph: the gains multiply zero)."""
    luminance = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    if not luminance.any():
        return np.zeros((2, 2))
    means = np.array([[luminance[row::2, column::2].mean() for column in range(2)] for row in range(2)])
    return (means / luminance.mean() - 1) / PHASE_GAIN


def median_abs_laplacian(path: Path) -> float:
    """A generic noise statistic: the median magnitude of the 4-neighbour Laplacian of the luminance."""
    luminance = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    laplacian = (luminance[1:-1, :-2] + luminance[1:-1, 2:] + luminance[:-2, 1:-1] + luminance[2:, 1:-1]
                 - 4 * luminance[1:-1, 1:-1])
    return float(np.median(np.abs(laplacian)))


@pytest.mark.parametrize("seed", SEEDS)
def test_the_generators_fingerprint_tells_a_fake(demo, seed):
    """What the detectors are meant to find, measured: a linear model on the phase means (trained on the
    train split, scored on test), the cosine of each image's pattern with its generator's, and a generic
    noise statistic (median |Laplacian|, its best threshold on train) that reads the pattern too."""
    dataset = demo(seed)
    manifest = pd.read_csv(dataset / "manifest.csv", keep_default_na=False)
    is_fake = (manifest["label"] == "fake").to_numpy()
    train, test = (manifest["split"] == "train").to_numpy(), (manifest["split"] == "test").to_numpy()
    patterns = np.stack([phase_pattern(dataset / p).ravel() for p in manifest["path"]])
    linear = LogisticRegression().fit(patterns[train], is_fake[train]).score(patterns[test], is_fake[test])
    generator = generator_patterns(seed)["upsampler"].ravel()
    centred = patterns - patterns.mean(axis=1, keepdims=True)
    cosine = centred @ generator / (np.maximum(np.linalg.norm(centred, axis=1), 1e-12) * np.linalg.norm(generator))
    by_cosine = ((cosine > 0.8) == is_fake)[test].mean()
    noise = np.array([median_abs_laplacian(dataset / p) for p in manifest["path"]])
    threshold, direction, _ = best_threshold(noise[train], is_fake[train])
    by_noise = ((direction * (noise[test] - threshold) > 0) == is_fake[test]).mean()
    print(f"\nseed {seed}, test split ({test.sum()} images): phase means, linear model {linear:.1%}; "
          f"pattern's cosine > 0.8 {by_cosine:.1%}; median |Laplacian| {by_noise:.1%}")
    # fakes carry their generator's pattern; each real photograph its own, so they point anywhere
    assert np.median(cosine[is_fake]) > 0.9 and abs(np.median(cosine[~is_fake])) < 0.5
    assert linear > 0.85 and by_cosine > 0.85
