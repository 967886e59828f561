"""The figures behind docs/science.md's "Trustworthy results": how often each nominal 95% interval covers the
truth, and how often Holm's correction calls architectures equal by construction separable, over 2,000
simulated test splits each. The simulations are tests/unit/test_intervals_coverage.py's (which bound
them: 93-97% coverage, at most 5% + 1 point of false separations); this prints what they measure.

    python benchmarks/interval_coverage.py
"""
import sys
from pathlib import Path

from record import emit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "unit"))
import test_intervals_coverage as simulated  # noqa: E402  (after its folder is on the path)


def main() -> None:
    figures = {
        "accuracy_coverage_images_120": simulated.accuracy_coverage(1, 120, 0.85, None, grouped=False),
        "accuracy_coverage_images_400": simulated.accuracy_coverage(1, 400, 0.93, None, grouped=False),
        **{f"accuracy_coverage_groups_{g}x{m}": simulated.accuracy_coverage(g, m, mu, 10, grouped=True)
           for g, m, mu in [(3, 40, 0.8), (5, 24, 0.85), (10, 12, 0.8), (30, 4, 0.9)]},
        "accuracy_coverage_3x40_taken_as_images": simulated.accuracy_coverage(3, 40, 0.8, 10, grouped=False),
        **{f"auc_coverage_{g}x{m}": simulated.auc_coverage(g, m, spread) for g, m, spread in [(240, 1, 0.0), (3, 40, 0.7), (10, 12, 1.0)]},
        **{f"seed_coverage_{k}_seeds": simulated.seed_coverage(k) for k in (2, 3, 5)},
        **{f"equal_separable_accuracy_groups_{g}x{m}": simulated.accuracy_rejections(g, m, grouped=True) for g, m in [(3, 40), (10, 12)]},
        "equal_separable_accuracy_mcnemar_images_3x40": simulated.accuracy_rejections(3, 40, grouped=False),
        "equal_separable_auc_groups_6x20": simulated.auc_rejections(6, 20),
        **{f"equal_separable_{k}_seeds": simulated.seed_rejections(k) for k in (3, 5)},
    }
    emit("interval_coverage", figures)


if __name__ == "__main__":
    main()
