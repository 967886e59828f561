"""Runs that collapsed: a seed at chance while its siblings learnt, or a run whose training diverged.
Such a run is named, not averaged: a mean over seeds with one seed at 50% among seeds at 95% describes
neither, and its interval covers nothing (one seed in ten at chance took the interval over seeds to
31-67% coverage in simulation).

Plain Python: the leaderboard and status import this.
"""
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

STANDARD_ERRORS = 2.0  # how far above chance a run must score to count as having learnt
DIVERGED = "training diverged"  # how a failed run's error begins when its loss left the finite numbers


class RunScore(NamedTuple):
    """A run's test accuracy, how many test images it was measured on, and chance: the share of the
    larger class (what always answering it scores)."""
    accuracy: float
    images: int
    chance: float


def run_score(test: dict[str, Any]) -> RunScore | None:
    """A completed run's score from its record's test metrics; None where they hold no accuracy or no
    confusion matrix."""
    matrix = test.get("confusion_matrix")
    if test.get("accuracy") is None or not matrix:
        return None
    classes = [sum(row) for row in matrix]
    return RunScore(test["accuracy"], sum(classes), max(classes) / max(1, sum(classes)))


def at_chance(score: RunScore, standard_errors: float = STANDARD_ERRORS) -> bool:
    """Whether a run scores no better than chance: within standard_errors binomial standard errors of it
    (images taken as independent, which makes the band narrow: generous to the run)."""
    if score.images <= 0:
        return False
    band = standard_errors * math.sqrt(score.chance * (1 - score.chance) / score.images)
    return score.accuracy <= score.chance + band


def collapsed_runs(scores: Mapping[str, RunScore]) -> dict[str, str]:
    """Of one architecture's runs (run id -> its test score), those at chance while more than half of
    the others are not, each with the reason; none where most runs are at chance (the architecture
    itself does not learn, which the mean says)."""
    low = {run for run, score in scores.items() if at_chance(score)}
    learnt = [score.accuracy for run, score in scores.items() if run not in low]  # each low run's siblings that learnt
    if not low or 2 * len(learnt) <= len(scores) - 1:
        return {}
    return {run: (f"at chance: test accuracy {scores[run].accuracy:.3f} against {scores[run].chance:.3f} for always the "
                  f"larger class, while {len(learnt)} of its {len(scores) - 1} sibling seeds score "
                  f"{min(learnt):.3f}-{max(learnt):.3f}") for run in sorted(low)}
