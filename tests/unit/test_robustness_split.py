"""The test images the perturbed passes score: the whole split, or at most N of them, as many of each class,
the same images for every run (a sweep on the demo scores 200 of its 400)."""
import numpy as np
import pandas as pd
import pytest

from harness.data.cache import CachedSplit
from harness.training.evaluate import robustness_split


def split(reals: int, fakes: int) -> CachedSplit:
    labels = np.array([0] * reals + [1] * fakes)[np.random.default_rng(5).permutation(reals + fakes)]
    images = (np.arange(len(labels)) % 256).astype(np.uint8).reshape(-1, 1, 1, 1).repeat(3, axis=3)  # image i holds i
    return CachedSplit(images=images, labels=labels, index=pd.DataFrame({"path": [f"{i}.png" for i in range(len(labels))]}))


def test_at_most_n_images_as_many_of_each_class_in_the_splits_order_the_same_every_time():
    test = split(200, 200)
    kept = robustness_split(test, 100)
    assert len(kept.labels) == 100 and (kept.labels == 0).sum() == (kept.labels == 1).sum() == 50
    positions = [int(p.removesuffix(".png")) for p in kept.index["path"]]
    assert positions == sorted(positions) and len(set(positions)) == 100
    assert (test.labels[positions] == kept.labels).all() and (kept.images[:, 0, 0, 0] == np.array(positions) % 256).all()
    again = robustness_split(test, 100)
    assert list(again.index["path"]) == list(kept.index["path"])  # every run of a sweep scores the same images


@pytest.mark.parametrize("most", [None, 400, 1000])
def test_none_or_a_bound_the_split_does_not_reach_keeps_the_whole_split(most):
    test = split(200, 200)
    assert robustness_split(test, most) is test


def test_a_class_with_fewer_images_than_its_share_gives_all_of_them():
    kept = robustness_split(split(10, 300), 100)
    assert (kept.labels == 0).sum() == 10 and (kept.labels == 1).sum() == 50
