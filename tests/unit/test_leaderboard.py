"""The leaderboard's aggregation over seeds, on made-up records: means, intervals, status, order."""
import math

import numpy as np
import pytest
from scipy import stats

from harness.analysis.leaderboard import leaderboard, with_paper
from harness.analysis.load import SweepResults
from harness.stats.intervals import mean_interval, t_quantile
from harness.store.paths import SweepPaths
from harness.store.records import RunSpec, write_record, write_spec

from test_store import completed, spec


def sweep_with(tmp_path, accuracies: dict[str, list[float | None]]) -> SweepPaths:
    """A sweep whose runs have these test accuracies (None: no record yet)."""
    runs = [RunSpec(f"{model}-s{seed}", model, seed) for model, values in accuracies.items() for seed in range(len(values))]
    sweep = SweepPaths(tmp_path / "s1")
    write_spec(sweep, spec(runs=runs))
    for model, values in accuracies.items():
        for seed, accuracy in enumerate(values):
            if accuracy is not None:
                write_record(sweep.run(f"{model}-s{seed}"), completed(f"{model}-s{seed}", accuracy, seed=seed))
    return sweep


def crossed_sweep(tmp_path, correct: dict[str, list], groups, resplit: bool = False) -> SweepPaths:
    """A sweep whose runs got these test images right (one boolean array per seed), on one test set of
    balanced classes whose images fall in these groups; each record's test figures match its scores."""
    runs = [RunSpec(f"{model}-s{seed}", model, seed) for model, seeds in correct.items() for seed in range(len(seeds))]
    sweep = SweepPaths(tmp_path / "s1")
    write_spec(sweep, spec(runs=runs))
    labels = np.arange(len(groups)) % 2
    for model, seeds in correct.items():
        for seed, right in enumerate(seeds):
            probs = np.where(right, labels, 1 - labels) * 0.8 + 0.1 + np.linspace(0, 0.05, len(labels))
            rid = f"{model}-s{seed}"
            matrix = [[int(((labels == 0) & right).sum()), int(((labels == 0) & ~right).sum())],
                      [int(((labels == 1) & ~right).sum()), int(((labels == 1) & right).sum())]]
            test = {"accuracy": float(right.mean()), "loss": 0.3, "auc": 0.9, "f1": float(right.mean()),
                    "confusion_matrix": matrix, "count": len(labels)}
            write_record(sweep.run(rid), completed(rid, float(right.mean()), seed=seed, test=test, config={"resplit": resplit}))
            np.save(sweep.run(rid).test_scores, np.stack([labels, probs, groups]))
    return sweep


def two_way_anova(cells):
    """Var(mean) over new seeds and units from the textbook two-way random-effects ANOVA of a seeds x
    units table of cell accuracies (equal unit sizes): (MS_seed + MS_unit - MS_residual) / (S G), and
    its Satterthwaite degrees of freedom."""
    seeds, units = cells.shape
    grand, by_seed, by_unit = cells.mean(), cells.mean(axis=1), cells.mean(axis=0)
    ms_seed = units * ((by_seed - grand) ** 2).sum() / (seeds - 1)
    ms_unit = seeds * ((by_unit - grand) ** 2).sum() / (units - 1)
    ms_residual = ((cells - by_seed[:, None] - by_unit[None] + grand) ** 2).sum() / ((seeds - 1) * (units - 1))
    total = ms_seed + ms_unit - ms_residual
    df = total ** 2 / (ms_seed ** 2 / (seeds - 1) + ms_unit ** 2 / (units - 1) + ms_residual ** 2 / ((seeds - 1) * (units - 1)))
    return total / (seeds * units), df


def test_the_interval_counts_the_seeds_and_the_test_groups_together(tmp_path):
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(12), 20)
    hard = rng.normal(0, 1, 12)[groups]  # each photograph's difficulty, shared by every seed
    right = [rng.random(240) < 1 / (1 + np.exp(-(2 + hard + rng.normal(0, 0.4)))) for _ in range(4)]
    row = leaderboard(SweepResults(crossed_sweep(tmp_path, {"ResNet50": right}, groups)))[0]
    cells = np.array([[r[groups == g].mean() for g in range(12)] for r in right])
    variance, df = two_way_anova(cells)
    mean = cells.mean()
    effective = min(mean * (1 - mean) / variance, 240)
    z = stats.t.ppf(0.975, row["interval_df"])
    centre, half = (mean + z * z / (2 * effective)) / (1 + z * z / effective), \
        z / (1 + z * z / effective) * math.sqrt(mean * (1 - mean) / effective + z * z / (4 * effective ** 2))
    assert row["accuracy"] == pytest.approx(mean) and row["seeds"] == 4
    assert (row["accuracy_lo"], row["accuracy_hi"]) == pytest.approx((centre - half, centre + half))
    assert row["interval_df"] <= df + 1e-9  # Satterthwaite's, the groups' own degrees of freedom at most theirs
    assert row["interval_population"] == "new test groups" and "seeds x test groups crossed" in row["interval_method"]
    f1 = mean_interval([r.mean() for r in right])  # the other metrics: Student's t over the seeds
    assert (row["f1_lo"], row["f1_hi"]) == pytest.approx(f1[1:])


def test_seeds_without_an_error_take_the_test_photographs_as_trials_and_say_so(tmp_path):
    """Three seeds, none wrong on 12 photographs of 20 crops: no spread between photographs to read, so the
    interval is Wilson's over the 12 photographs (at t with 11 df), not over 240 images."""
    from harness.analysis.leaderboard import interval_lines

    groups = np.repeat(np.arange(12), 20)
    row = leaderboard(SweepResults(crossed_sweep(tmp_path, {"ResNet50": [np.ones(240, dtype=bool)] * 3}, groups)))[0]
    z = stats.t.ppf(0.975, 11)
    assert row["accuracy"] == 1.0 and row["interval_df"] == 11 and row["accuracy_hi"] == 1.0
    assert row["accuracy_lo"] == pytest.approx(12 / (12 + z * z))  # Wilson's lower bound at 100%: n / (n + z^2)
    assert interval_lines([row]) == ["acc 95% CI over new test groups: Wilson with a design effect over seeds x test groups "
                                     "crossed (two-way random effects); accuracy with its test groups as trials (its errors, or its "
                                     "right answers, in fewer than two); AUC on the logit scale"]


def test_where_rows_intervals_were_made_in_two_ways_the_caption_names_the_rows_of_each(tmp_path):
    from harness.analysis.leaderboard import interval_lines

    groups, rng = np.repeat(np.arange(12), 20), np.random.default_rng(5)
    right = {"ResNet50": [np.ones(240, dtype=bool)] * 3, "VGG16": [rng.random(240) < 0.9 for _ in range(3)]}
    lines = interval_lines(leaderboard(SweepResults(crossed_sweep(tmp_path, right, groups))))
    assert len(lines) == 2 and lines[0].endswith("AUC on the logit scale (VGG16)")
    assert "as trials" in lines[1] and lines[1].endswith("(ResNet50)")


def test_over_this_test_set_the_interval_is_the_seeds_alone_and_says_so(tmp_path):
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(10), 20)
    right = [rng.random(200) < 0.85 for _ in range(3)]
    sweep = crossed_sweep(tmp_path, {"ResNet50": right}, groups)
    new, this = (leaderboard(SweepResults(sweep), population=p)[0] for p in ("new-test-set", "this-test-set"))
    assert this["interval_population"] == "this test set" and "conditional on this test set" in this["interval_method"]
    assert this["accuracy_hi"] - this["accuracy_lo"] < new["accuracy_hi"] - new["accuracy_lo"]
    assert this["separability_test"] is None


def test_with_too_few_seeds_or_units_the_interval_says_why(tmp_path):
    from harness.analysis.leaderboard import interval_lines

    rng = np.random.default_rng(2)
    right = {"A": [rng.random(200) < 0.9 for _ in range(2)], "B": [rng.random(200) < 0.8]}
    rows = {r["model"]: r for r in leaderboard(SweepResults(crossed_sweep(tmp_path, right, np.arange(200) % 10)))}
    assert rows["A"]["accuracy_lo"] is None and rows["A"]["interval_reason"].startswith(
        "2 seeds: too few for an interval that counts seed variance (3 needed)")
    assert rows["B"]["accuracy_lo"] is not None and "1 seed: seed variance not counted" in rows["B"]["interval_method"]
    few = leaderboard(SweepResults(crossed_sweep(tmp_path / "few", {"A": right["B"]}, np.arange(200) % 3)))[0]
    assert few["accuracy_lo"] is None and few["interval_reason"] == "too few units for an interval: 3 test groups, 5 needed"
    assert "no acc 95% CI where too few units for an interval: 3 test groups, 5 needed" in interval_lines([few])


def test_test_scores_that_disagree_with_their_record_are_not_used(tmp_path):
    rng = np.random.default_rng(6)
    sweep = crossed_sweep(tmp_path, {"ResNet50": [rng.random(200) < 0.9 for _ in range(3)]}, np.arange(200) % 10)
    scores = np.load(sweep.run("ResNet50-s1").test_scores)
    scores[1] = 1 - scores[1]  # another run's scores, or damaged ones
    np.save(sweep.run("ResNet50-s1").test_scores, scores)
    row = leaderboard(SweepResults(sweep))[0]
    assert row["interval_population"] == "this test set"  # the seeds alone, saying why
    assert "ResNet50-s1's test scores (test_scores.npy) disagree with its record's test accuracy" in row["interval_method"]


def test_a_seed_at_chance_is_named_and_left_out_of_the_mean_the_interval_and_status(tmp_path):
    from harness.analysis.status import sweep_status

    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(10), 20)
    right = [rng.random(200) < 0.9 for _ in range(3)] + [rng.random(200) < 0.5]
    sweep = crossed_sweep(tmp_path, {"ResNet50": right}, groups)
    row = leaderboard(SweepResults(sweep))[0]
    assert row["seeds"] == 3 and row["accuracy"] == pytest.approx(np.mean([r.mean() for r in right[:3]]))
    assert len(row["left_out"]) == 1 and row["left_out"][0].startswith("ResNet50-s3: at chance: test accuracy")
    reason = {s.run_id: s.reason for s in sweep_status(SweepResults(sweep))[0]}["ResNet50-s3"]
    assert reason.startswith("collapsed, at chance") and "left out of the leaderboard" in reason


def test_a_run_whose_training_diverged_is_named(tmp_path):
    from harness.stats.collapse import DIVERGED
    from harness.store.records import RunRecord

    sweep = sweep_with(tmp_path, {"ResNet50": [0.9, 0.91, 0.92, None]})
    write_record(sweep.run("ResNet50-s3"), RunRecord(
        sweep_id="s1", run_id="ResNet50-s3", model="ResNet50", seed=3, status="FAILED", config={},
        error=f"{DIVERGED}: the training loss was nan in epoch 2", finished_at="2026-11-27T01:00:00+00:00"))
    row = leaderboard(SweepResults(sweep))[0]
    assert row["left_out"] == [f"ResNet50-s3: {DIVERGED}: the training loss was nan in epoch 2"] and row["seeds"] == 3


def test_with_resplit_the_interval_is_over_the_seeds_and_their_splits(tmp_path):
    rng = np.random.default_rng(4)
    sweep = crossed_sweep(tmp_path, {"ResNet50": [rng.random(200) < 0.9 for _ in range(3)]}, np.arange(200) % 10, resplit=True)
    row = leaderboard(SweepResults(sweep))[0]
    assert row["interval_population"] == "new splits" and row["accuracy_lo"] < row["accuracy"] < row["accuracy_hi"]
    this = leaderboard(SweepResults(sweep), population="this-test-set")[0]
    assert this["accuracy_lo"] is None and "no one test set" in this["interval_reason"]


def test_missing_runs_keep_their_row_with_a_status(tmp_path):
    rows = leaderboard(SweepResults(sweep_with(tmp_path, {"ResNet50": [0.9, None], "VGG16": [None]})))
    assert [r["model"] for r in rows] == ["ResNet50", "VGG16"]  # ranked by accuracy, the empty row last
    assert rows[0]["status"] == "1 COMPLETED, 1 NOT SUBMITTED" and rows[0]["seeds"] == 1
    assert rows[1]["accuracy"] is None and rows[1]["status"] == "1 NOT SUBMITTED"


def test_sort_by_a_lower_is_better_metric_and_the_paper_beside(tmp_path):
    rows = with_paper(leaderboard(SweepResults(sweep_with(tmp_path, {"ResNet50": [0.9], "VGG16": [0.8]})), sort="loss"))
    assert {r["paper_accuracy"] for r in rows} == {0.9934, 0.9771}


def test_the_quantile_in_plain_python_is_scipys():
    for df in (1, 2, 4, 9, 29, 200):
        assert t_quantile(0.975, df) == pytest.approx(stats.t.ppf(0.975, df), rel=1e-9)
    assert mean_interval([0.2, 1.9], bounds=(0.0, None))[2] > 1  # a loss is bounded below only


def scored_sweep(tmp_path, groups=None):
    """Three architectures, one seed each, on the same 200 test images: A and B nearly agree, C is right
    far less often. groups: each test image's group number, written as test_scores.npy's third row."""
    sweep = sweep_with(tmp_path, {"A": [0.9], "B": [0.89], "C": [0.6]})
    rng = np.random.default_rng(0)
    labels = np.repeat([0.0, 1.0], 100)
    right = {"A": rng.random(200) < 0.9, "C": rng.random(200) < 0.6}
    right["B"] = right["A"] ^ (rng.random(200) < 0.02)
    for model, correct in right.items():
        probs = np.where(correct, labels, 1 - labels) * 0.8 + 0.1
        np.save(sweep.run(f"{model}-s0").test_scores, np.stack([labels, probs, *([] if groups is None else [groups])]))
    return sweep


def test_separability_over_independent_test_images_is_mcnemars(tmp_path):
    rows = {r["model"]: r for r in leaderboard(SweepResults(scored_sweep(tmp_path)))}
    assert rows["A"]["not_separable_from"] == ["B"] and rows["B"]["not_separable_from"] == ["A"]
    assert (rows["A"]["group"], rows["B"]["group"], rows["C"]["group"]) == ("a", "a", "b")
    assert rows["C"]["not_separable_from"] == [] and rows["C"]["separability_test"] == (
        "McNemar on accuracy over the test images (1 seed: seed variance not counted), Holm over 3 pairs, 5%")
    assert rows["C"]["not_tested_against"] is None and rows["C"]["separability_reason"] is None
    by_auc = leaderboard(SweepResults(scored_sweep(tmp_path / "auc")), sort="auc")
    assert by_auc[0]["separability_test"] == "DeLong on AUC over the test images (1 seed: seed variance not counted), Holm over 3 pairs, 5%"


def test_separability_pairs_on_the_test_groups_where_the_manifest_has_them(tmp_path):
    rows = {r["model"]: r for r in leaderboard(SweepResults(scored_sweep(tmp_path, groups=np.arange(200) % 20)))}
    assert rows["C"]["separability_test"] == ("paired test on accuracy over 20 test groups (1 seed: seed variance not "
                                              "counted), Holm over 3 pairs, 5%")
    assert rows["A"]["not_separable_from"] == ["B"] and rows["C"]["not_separable_from"] == []
    auc = leaderboard(SweepResults(scored_sweep(tmp_path / "auc", groups=np.arange(200) % 20)), sort="auc")[0]
    assert auc["separability_test"].startswith("DeLong on AUC clustered by group (Obuchowski) over 20 test groups")


def test_with_one_test_group_nothing_is_called_separable_or_not(tmp_path):
    from harness.analysis.leaderboard import separability_caption

    rows = leaderboard(SweepResults(scored_sweep(tmp_path, groups=np.zeros(200))))
    assert all(r["not_separable_from"] is None and r["group"] is None and r["separability_test"] is None for r in rows)
    assert rows[0]["separability_reason"] == "the test split holds one group: a spread between groups needs 2"
    assert separability_caption(rows) == ("group: no pair tested; not tested where the test split holds one "
                                           "group: a spread between groups needs 2")


def test_over_this_test_set_separability_is_a_paired_t_test_on_the_seeds_accuracy(tmp_path):
    sweep = sweep_with(tmp_path, {"A": [0.90, 0.92, 0.91], "B": [0.80, 0.83, 0.80], "C": [0.91, 0.90, 0.92], "D": [0.7]})
    rows = {r["model"]: r for r in leaderboard(SweepResults(sweep), population="this-test-set")}
    p = stats.ttest_rel([0.90, 0.92, 0.91], [0.80, 0.83, 0.80]).pvalue
    assert p * 3 < 0.05 and rows["A"]["not_separable_from"] == ["C"] and rows["B"]["not_separable_from"] == []
    assert rows["A"]["separability_test"] == ("paired t-test on per-seed accuracy over seeds, conditional on this test set, "
                                              "Holm over 3 pairs, 5%")
    assert rows["A"]["not_tested_against"] == ["D"] and rows["D"]["not_separable_from"] is None
    assert rows["D"]["not_tested_against"] == ["A", "C", "B"] and rows["D"]["separability_reason"] == "1 seed in common: a spread needs 2"


def test_over_new_test_sets_separability_is_the_crossed_test_over_seeds_and_groups(tmp_path):
    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(10), 20)
    right = {"A": [rng.random(200) < 0.95 for _ in range(4)], "B": [rng.random(200) < 0.6 for _ in range(4)]}
    rows = {r["model"]: r for r in leaderboard(SweepResults(crossed_sweep(tmp_path, right, groups)))}
    assert rows["A"]["separability_test"].startswith("crossed paired test on accuracy over seeds x test units")
    assert rows["A"]["not_separable_from"] == [] and rows["A"]["group"] != rows["B"]["group"]


def test_a_run_on_other_test_images_or_without_scores_is_not_tested_and_says_why(tmp_path):
    sweep = scored_sweep(tmp_path)
    np.save(sweep.run("C-s0").test_scores, np.stack([np.zeros(50), np.full(50, 0.2)]))  # another test split
    rows = {r["model"]: r for r in leaderboard(SweepResults(sweep))}
    assert rows["A"]["not_separable_from"] == ["B"] and rows["A"]["not_tested_against"] == ["C"]
    assert rows["C"]["not_separable_from"] is None and rows["C"]["separability_reason"] == "not both scored on the same test images"
    assert rows["C"]["separability_test"] == ("McNemar on accuracy over the test images (1 seed: seed variance not "
                                              "counted), Holm over 1 pair, 5%")
    sweep.run("C-s0").test_scores.unlink()
    assert leaderboard(SweepResults(sweep))[-1]["separability_reason"] == "test scores missing or damaged (test_scores.npy)"


def test_compact_letters_share_a_letter_exactly_where_a_pair_is_not_separable():
    import itertools
    import random

    from harness.stats.paired import compact_letters

    assert compact_letters("ABC", [frozenset("AC")]) == {"A": "a", "B": "ab", "C": "b"}
    assert compact_letters("ABC", []) == {"A": "a", "B": "a", "C": "a"}
    assert compact_letters("ABC", [frozenset(p) for p in ("AB", "AC", "BC")]) == {"A": "a", "B": "b", "C": "c"}
    chance = random.Random(0)
    for _ in range(300):  # the display's one property, on random outcomes of the 28 pairs of eight architectures
        names = list("ABCDEFGH")
        separable = [frozenset(pair) for pair in itertools.combinations(names, 2) if chance.random() < 0.5]
        letters = compact_letters(names, separable)
        for a, b in itertools.combinations(names, 2):
            assert bool(set(letters[a]) & set(letters[b])) == (frozenset((a, b)) not in separable), (a, b, letters)


def test_the_command_and_the_report_show_one_leaderboard(cli, tmp_path):
    """`leaderboard` prints the view (analysis.board) that the report lays out: the same headers, the same cells."""
    from perf_helpers import make_sweep, record

    test = {"accuracy": 0.9, "auc": 0.92, "f1": 0.9, "loss": 0.3, "confusion_matrix": [[5, 1], [1, 5]]}
    results = tmp_path / "results"
    make_sweep(results, "one", [record(model, seed, sweep="one", test={**test, "accuracy": accuracy + 0.01 * seed})
                                for model, accuracy in (("ResNet50", 0.9), ("VGG16", 0.8)) for seed in (0, 1, 2)])
    printed = cli("leaderboard", "--format", "markdown", "--results", results).out.splitlines()
    assert cli("report", "--format", "markdown", "--results", results).code == 0
    report = (results / "one" / "report.md").read_text().splitlines()
    table = [line for line in printed if line.startswith("| ")]  # the header and the rows (each page aligns its own)
    assert len(table) == 3 and "acc 95% CI" in table[0] and all(line in report for line in table), table
