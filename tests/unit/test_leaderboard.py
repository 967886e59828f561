"""The leaderboard's aggregation over seeds, on made-up records: means, intervals, status, order."""
import math

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


def test_mean_and_student_t_interval_over_seeds(tmp_path):
    rows = {r["model"]: r for r in leaderboard(SweepResults(sweep_with(tmp_path, {"ResNet50": [0.90, 0.92, 0.94], "VGG16": [0.7]})))}
    resnet = rows["ResNet50"]
    half = stats.t.ppf(0.975, 2) * 0.02 / math.sqrt(3)
    assert resnet["accuracy"] == pytest.approx(0.92) and resnet["seeds"] == 3 and resnet["status"] == "COMPLETED"
    assert (resnet["accuracy_lo"], resnet["accuracy_hi"]) == pytest.approx((0.92 - half, 0.92 + half))
    assert rows["VGG16"]["accuracy_lo"] is None  # one seed: no interval


def test_an_interval_never_leaves_the_metric_range(tmp_path):
    row = leaderboard(SweepResults(sweep_with(tmp_path, {"ResNet50": [0.5, 0.99]})))[0]
    assert 0 <= row["accuracy_lo"] <= row["accuracy"] <= row["accuracy_hi"] <= 1  # unclipped: [-2.6, 4.1]


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
    import numpy as np

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
        "McNemar on accuracy over the test images, Holm over 3 pairs, 5%")
    assert rows["C"]["not_tested_against"] is None and rows["C"]["separability_reason"] is None
    by_auc = leaderboard(SweepResults(scored_sweep(tmp_path / "auc")), sort="auc")
    assert by_auc[0]["separability_test"] == "DeLong on AUC over the test images, Holm over 3 pairs, 5%"


def test_separability_pairs_on_the_test_groups_where_the_manifest_has_them(tmp_path):
    import numpy as np

    rows = {r["model"]: r for r in leaderboard(SweepResults(scored_sweep(tmp_path, groups=np.arange(200) % 20)))}
    assert rows["C"]["separability_test"] == "cluster-robust paired t-test on accuracy over 20 test groups, Holm over 3 pairs, 5%"
    assert rows["A"]["not_separable_from"] == ["B"] and rows["C"]["not_separable_from"] == []
    auc = leaderboard(SweepResults(scored_sweep(tmp_path / "auc", groups=np.arange(200) % 20)), sort="auc")[0]
    assert auc["separability_test"].startswith("DeLong on AUC clustered by group (Obuchowski) over 20 test groups")


def test_with_one_test_group_nothing_is_called_separable_or_not(tmp_path):
    import numpy as np

    from harness.analysis.leaderboard import separability_caption

    rows = leaderboard(SweepResults(scored_sweep(tmp_path, groups=np.zeros(200))))
    assert all(r["not_separable_from"] is None and r["group"] is None and r["separability_test"] is None for r in rows)
    assert rows[0]["separability_reason"] == "the test split holds one group: a spread between groups needs 2"
    assert separability_caption(rows) == ("group: no pair tested; not tested where the test split holds one "
                                           "group: a spread between groups needs 2")


def test_with_several_seeds_separability_is_a_paired_t_test_on_the_seeds_accuracy(tmp_path):
    sweep = sweep_with(tmp_path, {"A": [0.90, 0.92, 0.91], "B": [0.80, 0.83, 0.80], "C": [0.91, 0.90, 0.92], "D": [0.7]})
    rows = {r["model"]: r for r in leaderboard(SweepResults(sweep))}
    p = stats.ttest_rel([0.90, 0.92, 0.91], [0.80, 0.83, 0.80]).pvalue
    assert p * 3 < 0.05 and rows["A"]["not_separable_from"] == ["C"] and rows["B"]["not_separable_from"] == []
    assert rows["A"]["separability_test"] == "paired t-test on per-seed accuracy, Holm over 3 pairs, 5%"
    assert rows["A"]["not_tested_against"] == ["D"] and rows["D"]["not_separable_from"] is None
    assert rows["D"]["not_tested_against"] == ["A", "C", "B"] and rows["D"]["separability_reason"] == "1 seed in common: a spread needs 2"


def test_the_leaderboard_says_what_its_interval_covers(tmp_path):
    sweep = sweep_with(tmp_path, {"ResNet50": [0.9, 0.92], "VGG16": [0.8]})
    rows = {r["model"]: r for r in leaderboard(SweepResults(sweep))}
    assert "split is fixed" in rows["ResNet50"]["interval_covers"] and rows["VGG16"]["interval_covers"] is None
    write_record(sweep.run("ResNet50-s1"), completed("ResNet50-s1", 0.92, seed=1, config={"resplit": True}))
    assert "split (--resplit)" in leaderboard(SweepResults(sweep))[0]["interval_covers"]


def test_with_one_seed_the_row_shows_its_records_interval_over_test_groups(tmp_path):
    sweep = sweep_with(tmp_path, {"ResNet50": [0.9], "VGG16": [0.8, 0.82]})
    method = "Wilson with a design effect over 3 groups (t, 2 df)"
    test = {"accuracy": 0.9, "loss": 0.3, "auc": 0.95, "accuracy_interval": [0.71, 0.97], "accuracy_interval_method": method}
    write_record(sweep.run("ResNet50-s0"), completed("ResNet50-s0", 0.9, test=test))
    rows = {r["model"]: r for r in leaderboard(SweepResults(sweep))}
    resnet, vgg = rows["ResNet50"], rows["VGG16"]
    assert (resnet["accuracy_test_lo"], resnet["accuracy_test_hi"], resnet["test_interval"]) == (0.71, 0.97, method)
    assert resnet["accuracy_lo"] is None and resnet["interval_reason"] == "1 seed: an interval over seeds needs 2"
    assert vgg["accuracy_test_lo"] is None and vgg["interval_reason"] is None and vgg["accuracy_lo"] is not None
    reason = "the test split holds 1 independent unit: a spread needs 2"
    write_record(sweep.run("ResNet50-s0"), completed("ResNet50-s0", 0.9, test={
        **test, "accuracy_interval": None, "accuracy_interval_reason": reason}))
    resnet = leaderboard(SweepResults(sweep))[0]
    assert resnet["accuracy_test_lo"] is None and resnet["test_interval"] == reason


def test_a_run_on_other_test_images_or_without_scores_is_not_tested_and_says_why(tmp_path):
    import numpy as np

    sweep = scored_sweep(tmp_path)
    np.save(sweep.run("C-s0").test_scores, np.stack([np.zeros(50), np.full(50, 0.2)]))  # another test split
    rows = {r["model"]: r for r in leaderboard(SweepResults(sweep))}
    assert rows["A"]["not_separable_from"] == ["B"] and rows["A"]["not_tested_against"] == ["C"]
    assert rows["C"]["not_separable_from"] is None and rows["C"]["separability_reason"] == "not both scored on the same test images"
    assert rows["C"]["separability_test"] == "McNemar on accuracy over the test images, Holm over 1 pair, 5%"
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
                                for model, accuracy in (("ResNet50", 0.9), ("VGG16", 0.8)) for seed in (0, 1)])
    printed = cli("leaderboard", "--format", "markdown", "--results", results).out.splitlines()
    assert cli("report", "--format", "markdown", "--results", results).code == 0
    report = (results / "one" / "report.md").read_text().splitlines()
    table = [line for line in printed if line.startswith("| ")]  # the header and the rows (each page aligns its own)
    assert len(table) == 3 and "AUC 95% CI (seeds)" in table[0] and all(line in report for line in table), table
