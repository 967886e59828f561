"""What the leaderboard's 95% intervals cover, and how often its separability test calls equal architectures
separable, over simulated sweeps of known truth (docs/science.md, "Trustworthy results", prints this table).

A simulated sweep scores S seeds on G test groups (photographs, identities) of 4 to 60 images each (drawn
at random: heterogeneous). Image i of group g is right for seed s with probability
expit(c + b_g + a_s + e_sg + x_i): b_g how hard the group is (a regime's group law), a_s the seed's shift
(its seed law), e_sg ~ N(0, 0.3) the seed x group interaction, x_i ~ N(0, 1) how hard the image is for every
seed. The truth is the population accuracy E[expit(...)] (c calibrated to 0.80, 0.95, 0.98), what an
interval over new test sets must cover. Group laws: "photographs differ", b ~ N(0, 1) on the logit scale;
"concentration 5", the group's accuracy ~ Beta(5 mu, 5 (1 - mu)) (errors concentrated in a few groups).
Seed laws: "normal", a ~ N(0, 0.3); "skewed", the seed's accuracy ~ Beta(19, 1) as a logit shift (a few
seeds far below the rest). For separability, three architectures equal in the population: each has its own
seeds and its own group interaction (N(0, 0.5) on the logit scale), so on a given test set they differ;
Holm over the 3 pairs at 5%.

Each cell runs the harness's own functions (stats.crossed, stats.collapse) on DRAWS simulated sweeps;
"refused" where the leaderboard gives no interval (fewer than MIN_UNITS units, or 2 seeds). The Monte Carlo
standard error of a coverage near 95%, or of a rate near 5%, is 1.0 point over 500 draws (the default),
0.7 over 1000 (docs/science.md's table).

    python benchmarks/interval_coverage.py [--draws 500] [--many-groups]
"""
import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import optimize, special

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing
from harness.stats.collapse import RunScore, collapsed_runs  # noqa: E402
from harness.stats.crossed import (  # noqa: E402
    MIN_SEEDS,
    MIN_UNITS,
    accuracy_bounds,
    accuracy_replicates,
    crossed_paired_test,
    proportion_interval,
    seed_spread,
)
from harness.stats.paired import holm_bonferroni  # noqa: E402

SIZES = (4, 60)
IMAGE_SD, INTERACTION_SD, ARCHITECTURE_SD = 1.0, 0.3, 0.5
ACCURACIES = (0.80, 0.95, 0.98)
CELLS = ((2, 3), (5, 3), (10, 1), (10, 2), (10, 3), (10, 5), (10, 10), (30, 3), (30, 10))  # (groups, seeds)
PAIRS = ((0, 1), (0, 2), (1, 2))
MANY_GROUPS = ((50, 3), (100, 3), (200, 3))  # --many-groups


def group_logits(rng: np.random.Generator, law: str, centre: float, shape: tuple[int, ...]) -> np.ndarray:
    if law == "photographs differ":
        return centre + rng.normal(0, 1.0, shape)
    mean = special.expit(centre)  # concentration 5
    return special.logit(np.clip(rng.beta(5 * mean, 5 * (1 - mean), shape), 1e-12, 1 - 1e-12))


def seed_shifts(rng: np.random.Generator, law: str, shape: tuple[int, ...]) -> np.ndarray:
    if law == "normal":
        return rng.normal(0, 0.3, shape)
    return special.logit(np.clip(rng.beta(19, 1, shape), 1e-12, 1 - 1e-12)) - special.logit(0.95)  # skewed


@dataclass(frozen=True)
class Regime:
    accuracy: float
    groups: str
    seeds: str

    def population(self, centre: float, draws: int = 400_000) -> float:
        """The population accuracy at centre c, by Monte Carlo (a fixed seed: the same c, the same truth)."""
        rng = np.random.default_rng(99)
        logits = (group_logits(rng, self.groups, centre, (draws,)) + seed_shifts(rng, self.seeds, (draws,))
                  + rng.normal(0, INTERACTION_SD, draws) + rng.normal(0, IMAGE_SD, draws))
        return float(special.expit(logits).mean())

    def centre(self) -> float:
        return float(optimize.brentq(lambda c: self.population(c) - self.accuracy, -5, 20, xtol=1e-5))


def simulate(rng: np.random.Generator, regime: Regime, centre: float, units: int, seeds: int, draws: int,
             architectures: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Which image each seed of each architecture gets right (draws x architectures x seeds x units x 60,
    images past a unit's size masked out as wrong) and each unit's size (draws x units)."""
    sizes = rng.integers(SIZES[0], SIZES[1] + 1, (draws, units))
    shape = (draws, architectures, seeds, units, 1)
    logits = (group_logits(rng, regime.groups, centre, (draws, 1, 1, units, 1))
              + rng.normal(0, ARCHITECTURE_SD if architectures > 1 else 0.0, (draws, architectures, 1, units, 1))
              + seed_shifts(rng, regime.seeds, (draws, architectures, seeds, 1, 1))
              + rng.normal(0, INTERACTION_SD, shape) + rng.normal(0, IMAGE_SD, (draws, 1, 1, units, SIZES[1])))
    return rng.random((draws, architectures, seeds, units, SIZES[1])) < special.expit(logits), sizes


def images_of(right: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One draw's seeds x images table of right answers and each image's unit, as the leaderboard reads them."""
    mask = np.arange(SIZES[1]) < sizes[:, None]
    return right[..., mask], np.repeat(np.arange(len(sizes)), sizes)


def refusal(units: int, seeds: int) -> str | None:
    """Why the leaderboard gives no interval here (analysis.variance), or None."""
    if units < MIN_UNITS:
        return f"{units} units"
    return "2 seeds" if seeds == 2 else None


def coverage(rng: np.random.Generator, regime: Regime, centre: float, truth: float, units: int, seeds: int, draws: int) -> float:
    """The share of draws whose interval over new test sets (stats.crossed) covers the truth."""
    right, sizes = simulate(rng, regime, centre, units, seeds, draws)
    covered = 0
    for d in range(draws):
        bounds = accuracy_bounds(*images_of(right[d, 0], sizes[d]))
        covered += bounds.low <= truth <= bounds.high
    return covered / draws


def false_separation(rng: np.random.Generator, regime: Regime, centre: float, units: int, seeds: int, draws: int) -> float:
    """The share of draws in which Holm over three equal architectures' pairs calls one separable."""
    right, sizes = simulate(rng, regime, centre, units, seeds, draws, architectures=3)
    rejected = 0
    for d in range(draws):
        replicates = [accuracy_replicates(*images_of(right[d, a], sizes[d])) for a in range(3)]
        p_values = [p for a, b in PAIRS if (p := crossed_paired_test(replicates[a], replicates[b])) is not None]
        rejected += bool(p_values) and bool((holm_bonferroni(p_values) < 0.05).any())
    return rejected / draws


def collapse_coverage(rng: np.random.Generator, regime: Regime, centre: float, truth: float, units: int, draws: int,
                      seeds: int = 10, rate: float = 0.1) -> tuple[float, float, float]:
    """Each seed collapses to chance (every answer a coin flip) with probability rate. stats.collapse names
    and leaves out the collapsed seeds; returns the interval's coverage of the working runs' accuracy over
    the draws with 3 seeds or more left, the share of collapsed seeds named and of working ones named."""
    right, sizes = simulate(rng, regime, centre, units, seeds, draws)
    covered = given = caught = collapsed = wrongly = working = 0
    for d in range(draws):
        correct, unit = images_of(right[d, 0], sizes[d])
        down = rng.random(seeds) < rate
        correct[down] = rng.random((int(down.sum()), correct.shape[1])) < 0.5
        named = collapsed_runs({str(s): RunScore(float(correct[s].mean()), correct.shape[1], 0.5) for s in range(seeds)})
        flagged = np.array([str(s) in named for s in range(seeds)])
        caught, collapsed = caught + int((flagged & down).sum()), collapsed + int(down.sum())
        wrongly, working = wrongly + int((flagged & ~down).sum()), working + int((~down).sum())
        if (~flagged).sum() >= MIN_SEEDS:
            bounds = accuracy_bounds(correct[~flagged], unit)
            covered, given = covered + (bounds.low <= truth <= bounds.high), given + 1
    return covered / max(given, 1), caught / max(collapsed, 1), wrongly / max(working, 1)


def conditional_coverage(rng: np.random.Generator, regime: Regime, centre: float, units: int, seeds: int, draws: int) -> float:
    """--population this-test-set: the interval over the seeds alone, against each test set's own truth
    (its images' accuracy averaged over seeds, by Gauss-Hermite quadrature over the normal seed terms), over
    the draws that have one (where every seed scored the same, the leaderboard gives none)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    spread_sd = math.hypot(0.3, INTERACTION_SD)
    covered = given = 0
    for _ in range(draws):
        sizes = rng.integers(SIZES[0], SIZES[1] + 1, units)
        fixed = np.repeat(group_logits(rng, regime.groups, centre, (units,)), sizes) + rng.normal(0, IMAGE_SD, sizes.sum())
        truth = float((special.expit(fixed[:, None] + spread_sd * nodes) @ weights).mean() / weights.sum())
        shifts = seed_shifts(rng, regime.seeds, (seeds, 1)) + np.repeat(rng.normal(0, INTERACTION_SD, (seeds, units)), sizes, axis=1)
        correct = rng.random((seeds, sizes.sum())) < special.expit(fixed + shifts)
        spread = seed_spread(correct.mean(axis=1))
        if spread.variance > 0:
            low, high = proportion_interval(spread, None)
            covered, given = covered + (low <= truth <= high), given + 1
    return covered / max(given, 1)


def resplit_coverage(rng: np.random.Generator, regime: Regime, centre: float, truth: float, units: int, seeds: int,
                     draws: int) -> float:
    """--resplit: each seed on its own test set; the interval over the seeds' accuracies."""
    right, sizes = simulate(rng, regime, centre, units, 1, draws * seeds)
    covered = 0
    for d in range(draws):
        values = [images_of(right[d * seeds + s, 0], sizes[d * seeds + s])[0].mean() for s in range(seeds)]
        low, high = proportion_interval(seed_spread(np.array(values)), int(sizes[d * seeds: (d + 1) * seeds].sum()))
        covered += low <= truth <= high
    return covered / draws


def percent(value: float) -> str:
    return f"{100 * value:.1f}"


def main_table(draws: int, regimes: list[Regime], cells: tuple[tuple[int, int], ...], log: Callable[[str], None]) -> dict:
    """Coverage and false separation for every regime and cell: the figures and the markdown table."""
    figures, lines = {}, ["| regime | " + " | ".join(f"{g} x {s}" for g, s in cells) + " |",
                          "|---|" + "---|" * len(cells)]
    for regime in regimes:
        rng, centre = np.random.default_rng(0), regime.centre()
        truth, shown = regime.population(centre), []
        for units, seeds in cells:
            name = f"{regime.groups}, {regime.seeds} seeds, {regime.accuracy:.2f}, {units}x{seeds}"
            refused = refusal(units, seeds)
            cover = coverage(rng, regime, centre, truth, units, seeds, draws) if not refused else None
            separate = false_separation(rng, regime, centre, units, seeds, draws) if seeds > 1 or not refused else None
            figures[name] = {"coverage": cover, "false_separation": separate, "refused": refused}
            shown.append(("refused" if refused else percent(cover)) + (f" / {percent(separate)}" if separate is not None else ""))
            log(f"{name}: {shown[-1]}")
        lines.append(f"| {regime.groups}, {regime.seeds} seeds, {regime.accuracy:.2f} | " + " | ".join(shown) + " |")
    return {"cells": figures, "table": "\n".join(lines)}


def special_rows(draws: int, log: Callable[[str], None]) -> dict:
    """The collapsed seeds, the interval conditional on this test set, and --resplit."""
    out: dict = {}
    for accuracy in ACCURACIES:
        regime = Regime(accuracy, "photographs differ", "normal")
        rng, centre = np.random.default_rng(1), regime.centre()
        truth = regime.population(centre)
        cover, caught, wrongly = collapse_coverage(rng, regime, centre, truth, 10, draws)
        out[f"collapse {accuracy:.2f}, 10x10, one seed in ten at chance"] = {
            "coverage": cover, "collapsed_named": caught, "working_named": wrongly}
        for units, seeds in ((10, 3), (10, 10), (30, 5)):
            cell = f"{accuracy:.2f}, {units}x{seeds}"
            out[f"this test set {cell}"] = {"coverage": conditional_coverage(rng, regime, centre, units, seeds, draws)}
            out[f"resplit {cell}"] = {"coverage": resplit_coverage(rng, regime, centre, truth, units, seeds, draws)}
        log(", ".join(f"{k}: {percent(v['coverage'])}" for k, v in out.items() if f"{accuracy:.2f}" in k))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=500, help="simulated sweeps per cell (default 500; 1000 took 106 s on 2 cores)")
    parser.add_argument("--many-groups", action="store_true", help="only the concentrated regimes at 0.95 and 0.98 over "
                        f"{', '.join(str(g) for g, _ in MANY_GROUPS)} groups: whether more test groups close their gap")
    args = parser.parse_args()
    start = time.perf_counter()
    if args.many_groups:
        regimes = [Regime(a, "concentration 5", s) for s in ("normal", "skewed") for a in (0.95, 0.98)]
        board = main_table(args.draws, regimes, MANY_GROUPS, lambda line: print(line, file=sys.stderr, flush=True))
        print("coverage % / false separation % (groups x seeds; 4-60 images per group)\n" + board["table"])
        from record import emit  # torch, for the machine's line: after the simulations

        emit("interval_coverage_many_groups", {"draws": args.draws, "seconds": round(time.perf_counter() - start, 1), **board["cells"]})
        return
    regimes = [Regime(a, g, s) for g in ("photographs differ", "concentration 5") for s in ("normal", "skewed") for a in ACCURACIES]
    board = main_table(args.draws, regimes, CELLS, lambda line: print(line, file=sys.stderr, flush=True))
    extra = special_rows(args.draws, lambda line: print(line, file=sys.stderr, flush=True))
    print("coverage % / false separation % (groups x seeds; 4-60 images per group)\n" + board["table"])
    for name, figures in extra.items():
        print(f"{name}: " + ", ".join(f"{k} {percent(v)}" for k, v in figures.items()))
    from record import emit  # torch, for the machine's line: after the simulations

    emit("interval_coverage", {"draws": args.draws, "seconds": round(time.perf_counter() - start, 1), **board["cells"], **extra})


if __name__ == "__main__":
    main()
