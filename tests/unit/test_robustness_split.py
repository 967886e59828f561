"""The test images the perturbed passes score: the whole split, or at most N of them, as many of each class,
the same images for every run on one split (a sweep on the demo scores 200 of its 400)."""
import numpy as np
import pytest

from harness.training.evaluate import robustness_positions


def labels(reals: int, fakes: int) -> np.ndarray:
    return np.array([0] * reals + [1] * fakes)[np.random.default_rng(5).permutation(reals + fakes)]


def test_at_most_n_images_as_many_of_each_class_in_the_splits_order_the_same_every_time():
    split = labels(200, 200)
    kept = robustness_positions(split, 100)
    assert len(kept) == len(set(kept)) == 100 and list(kept) == sorted(kept)
    assert (split[kept] == 0).sum() == (split[kept] == 1).sum() == 50
    assert list(robustness_positions(split, 100)) == list(kept)  # every run on this split scores the same images


@pytest.mark.parametrize("most", [None, 400, 1000])
def test_none_or_a_bound_the_split_does_not_reach_keeps_the_whole_split(most):
    assert list(robustness_positions(labels(200, 200), most)) == list(range(400))


def test_a_class_with_fewer_images_than_its_share_gives_all_of_them():
    split = labels(10, 300)
    kept = robustness_positions(split, 100)
    assert (split[kept] == 0).sum() == 10 and (split[kept] == 1).sum() == 50
