"""The leaderboard as every reader shows it: one view of a sweep's leaderboard (its rows, the columns a
table shows, its title and caption, the columns that make way on a narrow terminal), which `leaderboard`
prints and the report and the dashboard lay out. Plain Python, as the leaderboard."""
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.analysis.cells import interval
from harness.analysis.load import SweepResults
from harness.analysis.nodes import FIGURE, MAD_FLOOR, MAD_TIMES, is_every_node, node_rows, outlier_lines
from harness.analysis.scaling import DLE_SOURCE, with_dle
from harness.errors import UserError
from harness.store.figures import FIGURES
from harness.store.record_checks import view_of
from harness.store.records import SweepSpec

# The columns a table shows, and those that make way on a narrow terminal, first listed first (--wide shows them).
COLUMNS = ["model", "params", "accuracy", "loss", "precision", "recall", "f1", "auc", "train_images_per_s",
           "infer_images_per_s", "gpu_util_mean", "status"]
OPTIONAL = ("AUC 95% CI", "infer_images_per_s", "recall", "precision", "loss", "gpu_util_mean", "params", "f1",
            "eff 95% CI (seeds)", "train_images_per_s", "auc", "acc 95% CI", "group", "status", "efficiency")
# Each interval a table shows beside its figure, over the population the caption names (analysis.variance):
# (column, the figure, its bounds).
INTERVALS = (("acc 95% CI", "accuracy", "accuracy_lo", "accuracy_hi"), ("AUC 95% CI", "auc", "auc_lo", "auc_hi"))
SCALING_COLUMNS = ["ranks", "speedup", "efficiency", "eff 95% CI (seeds)"]
# A sweep of synthetic inputs: the speed figures, each rate beside its timed windows' interquartile range.
SYNTHETIC_COLUMNS = ["model", "params", "train_images_per_s", "train IQR", "infer_images_per_s", "infer IQR", "mfu",
                     "gpu_util_mean", "energy_per_image_j", "peak_gpu_memory_bytes", "status"]
SYNTHETIC_OPTIONAL = ("infer IQR", "energy_per_image_j", "peak_gpu_memory_bytes", "train IQR", "params", "gpu_util_mean",
                      "mfu", "status")
# An every-node sweep: each node's figure against its architecture's spread over the nodes.
NODE_COLUMNS = ["model", "node", FIGURE, "median", "mad", "threshold", "verdict"]
PAPER_COLUMNS = ["paper_params", "paper_accuracy", "paper_loss", "paper_precision", "paper_recall", "paper_f1"]


@dataclass(frozen=True)
class View:
    """A table as any renderer shows it: rows of values (each cell shown by its column, analysis.cells; a
    machine format gives every field of the rows), the columns shown in order, a title, a caption, the
    columns that make way on a narrow terminal (first listed, first dropped); compact: no outer frame."""

    rows: list[dict[str, Any]]
    columns: list[str]
    title: str | None = None
    caption: str | None = None
    optional: tuple[str, ...] = ()
    compact: bool = False


@dataclass(frozen=True)
class LeaderboardView:
    """A sweep's leaderboard: its table; with the paper compared, the sweep's setting beside the paper's and
    our figures with Table 2's in brackets (its caption says where the settings differ), which a terminal
    shows instead of the table."""

    table: View
    setting: View | None = None
    paper: View | None = None

    def as_json(self) -> dict[str, Any]:
        """Its views in JSON's types, as the cache keeps them (store.record_checks.view_of)."""
        return {part: view and {**dataclasses.asdict(view), "optional": list(view.optional)} for part, view in vars(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "LeaderboardView":
        return cls(**{part: view and View(**{**view, "optional": tuple(view["optional"])}) for part, view in data.items()})


def leaderboard_view(results: SweepResults, sort: str = "accuracy", compare: str | None = None,
                     population: str = "new-test-set") -> LeaderboardView:
    """The leaderboard's table: the means, the accuracy's and the AUC's intervals over the population asked
    for, the separability group, the scaling columns where the sweep ran at several rank counts; compare
    "dle": NVIDIA's published speedups beside them, "paper": Table 2's figures (paper_<figure>) and the
    paper's views. The caption says what was tested, what the intervals are about, what was left out, and
    what a test unit is (the dataset's groups, or its images where it has none). Kept in the records'
    check cache (store.record_checks.view_of): a sweep none of whose files changed is not read again."""
    runs, spec = [run.run_id for run in results.spec.runs], results.spec
    manifest = [Path(spec.dataset, "manifest.csv")] if spec.dataset else []  # --compare paper counts its classes
    made = view_of(results.sweep, runs, manifest, f"leaderboard sort={sort} compare={compare} population={population}",
                   lambda: _leaderboard_view(results, sort, compare, population).as_json())
    return LeaderboardView.from_json(made)


def _leaderboard_view(results: SweepResults, sort: str, compare: str | None, population: str) -> LeaderboardView:
    # numpy and the statistics imported here: a leaderboard kept in the cache needs neither
    from harness.analysis.leaderboard import interval_lines, leaderboard, separability_caption, units_line, with_paper

    if is_every_node(results):
        if compare:
            raise UserError(f"--compare {compare}: sweep {results.sweep.sweep_id} ran every node once (sweep --every-node), "
                            "and its leaderboard is the per-node table: compare a sweep that ran each architecture once")
        return LeaderboardView(node_view(results))
    if results.spec.synthetic:
        if compare == "paper":
            raise UserError(f"--compare paper: sweep {results.sweep.sweep_id} timed synthetic inputs, so it has no accuracy "
                            "to set beside Table 2")
        return LeaderboardView(synthetic_view(results, leaderboard(results, "train_images_per_s" if sort == "accuracy" else sort)))
    rows = leaderboard(results, sort, population)
    columns, caption = list(COLUMNS), separability_caption(rows)
    _interval_columns(rows, columns)
    if any(row.get("group") is not None for row in rows):
        columns.insert(columns.index("status"), "group")
    if "speedup" in rows[0]:
        caption += _scaling_columns(rows, columns)
    if compare == "dle":
        rows, note = _with_nvidia(results, rows, columns)
        caption += note
    setting = paper = None
    if compare == "paper":
        setting, paper = paper_views(results.spec, rows)
        rows, columns = with_paper(rows), columns + PAPER_COLUMNS
    title = f"leaderboard of sweep {results.sweep.sweep_id} (mean over seeds)"
    units = units_line([r for records in results.completed().values() for r in records])
    lines = [caption, *interval_lines(rows), *([units] if units else [])]
    return LeaderboardView(View(rows, columns, title, "; ".join(lines), OPTIONAL), setting, paper)


def synthetic_view(results: SweepResults, rows: list[dict[str, Any]]) -> View:
    """A synthetic sweep's leaderboard: its speed figures (the median of the timed windows, beside their
    interquartile range), no accuracy (null: synthetic inputs); the caption names the runs that shared
    their node or GPU."""
    for row in rows:
        for phase in ("train", "infer"):
            low, high = row.get(f"{phase}_images_per_s_q1"), row.get(f"{phase}_images_per_s_q3")
            row[f"{phase} IQR"] = "-" if low is None or high is None else f"[{low:,.1f}, {high:,.1f}]"
    shared = [line.split(":")[0] for row in rows for line in row.get("shared_by") or []]
    caption = ("synthetic inputs (random images of each run's batch and size): speed figures alone, the accuracy and "
               "every test metric null; img/s: the median of the timed windows, IQR: their interquartile range; "
               + (f"shared their node or GPU (their records' sharing says with what): {', '.join(shared)}" if shared
                  else "no run saw other work on its node or GPU"))
    return View(rows, SYNTHETIC_COLUMNS, f"leaderboard of sweep {results.sweep.sweep_id}, synthetic inputs (mean over seeds)",
                caption, SYNTHETIC_OPTIONAL)


def node_view(results: SweepResults) -> View:
    """An every-node sweep's leaderboard: each node's training images/s beside its architecture's spread over the
    nodes; the caption names the outliers (analysis.nodes)."""
    rows = node_rows(results)
    reasons = sorted({row["reason"] for row in rows if row["reason"]})
    outliers = outlier_lines(rows)
    found = f"outliers: {'; '.join(outliers)}" if outliers else None if reasons else "no outlier"
    caption = "; ".join(filter(None, [f"{FIGURE}: the median of a node's runs; OUTLIER: below its architecture's median over "
                                      f"the nodes by more than {MAD_TIMES} median absolute deviations (each at least "
                                      f"{MAD_FLOOR:.0%} of the median)", found, *reasons]))
    return View(rows, NODE_COLUMNS, f"every node of sweep {results.sweep.sweep_id}: {FIGURE} per node", caption,
                ("mad", "threshold", "median"))


def _interval_columns(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """The 95% intervals beside their figures, where a row has one."""
    for name, figure, low, high in INTERVALS:
        if any(row.get(low) is not None for row in rows):
            for row in rows:
                row[name] = interval(row.get(low), row.get(high))
            columns.insert(columns.index(figure) + 1, name)


def _scaling_columns(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A sweep at several rank counts: weak scaling against its runs on one rank; returns the caption's note."""
    for row in rows:
        row["eff 95% CI (seeds)"] = interval(row.get("efficiency_lo"), row.get("efficiency_hi"))
    at = columns.index("train_images_per_s") + 1
    columns[at:at] = SCALING_COLUMNS
    refused = sorted({row["speedup_reason"] for row in rows if row.get("speedup_reason")})
    return "; speedup: images/s against the same seed on one rank, the batch per rank fixed" + (
        f" (none where {'; '.join(refused)})" if refused else "")


def _with_nvidia(results: SweepResults, rows: list[dict[str, Any]], columns: list[str]) -> tuple[list[dict[str, Any]], str]:
    """The rows with NVIDIA's published speedups (scaling.with_dle), and the caption's note."""
    if "speedup" not in rows[0]:
        raise UserError(f"--compare dle: sweep {results.sweep.sweep_id} ran each architecture at one rank count, and "
                        "NVIDIA's figures are speedups (a sweep with --scaling 1,2,4,8 has them)")
    rows = [with_dle([row])[0] if row["ranks"] else row for row in rows]
    columns += ["dle_speedup", "dle_efficiency"]
    reasons = sorted({row["dle_reason"] for row in rows if row.get("dle_reason") and row["ranks"] != 1})
    return rows, f"; NVIDIA: {DLE_SOURCE}" + (f" ({'; '.join(reasons)})" if reasons else "")


def paper_views(spec: SweepSpec, rows: list[dict[str, Any]]) -> tuple[View, View]:
    """The sweep's setting beside the paper's, and our figures with Table 2's in brackets (paper.paper_view),
    captioned with where the settings differ (paper.setting_line). rows: the sweep's leaderboard."""
    from harness.analysis.paper import SETTING_COLUMNS, VIEW_TITLE, paper_view, setting_line, setting_rows

    setting = setting_rows(spec)
    shown, columns = paper_view(rows)
    return (View(setting, SETTING_COLUMNS, title=f"sweep {spec.sweep_id}: its setting beside the paper's"),
            View(shown, columns, VIEW_TITLE, setting_line(setting), optional=("recall", "precision", "loss"), compact=True))


def figures_view(rows: list[dict[str, Any]]) -> View:
    """Every figure of the registry that a row of the leaderboard measured, its mean over seeds."""
    measured = [name for name in FIGURES if any(row.get(name) is not None for row in rows)]
    return View(rows, ["model", *measured], title="Every figure measured, mean over seeds")
