"""`report`: one self-contained file (HTML, figures embedded; or Markdown beside its figures/): a sweep's
leaderboard with intervals first, then its HPC figures per architecture, the paper's Table 2, robustness,
every figure, and its settings last (folded)."""
import base64
import html
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from harness.analysis import cells
from harness.analysis.board import View, figures_view, leaderboard_view, paper_views
from harness.analysis.compare import gpu_hours
from harness.analysis.figures import completed_runs, cross_generator_tables, make_figures, robustness_scope, robustness_table, write_figures
from harness.analysis.leaderboard import paper_table
from harness.analysis.load import SweepResults
from harness.analysis.nodes import is_every_node
from harness.analysis.scaling import scaling_rows, with_dle
from harness.errors import UserError
from harness.inert import for_markdown
from harness.store.atomic import refuse_symlink, write_atomic
from harness.store.figures import FIGURES
from harness.store.paths import SweepPaths
from harness.store.records import RunRecord, SweepSpec
from harness.store.regular import kind_of
from harness.store.schema import DamagedFile
from harness.zoo import PAPER_PREPROCESSING, PAPER_PROBABLE_MODE

SETTINGS = ("sweep_id", "created", "dataset", "models", "seeds", "train", "cluster", "code")
OWN_SETTINGS = ("image_size", "batch_size", "lr", "warmup_epochs")  # what an architecture may set for itself (its runs' configs)
FIGURE_CAPTIONS = {
    "training_curves": "Training and validation accuracy and loss per epoch (the paper's Figure 5).",
    "roc": "ROC curves on the test split.",
    "accuracy_vs_speed": "Test accuracy against training throughput, one point per architecture.",
    "confusion": "Confusion matrices on the test split (seeds summed).",
    "robustness": "Test accuracy (%) under JPEG compression, downscaling and blur of both classes.",
    "cross_generator": "Test AUC of each architecture trained on one generator's fakes and tested on each generator's.",
    "scaling": "Training speedup against one rank, measured (with its 95% interval over seeds) beside the ideal and NVIDIA's "
               "published figure where the GPU and the precision match.",
}
# A report's section: (title, kind, content), the content's type following its kind; a folded table shows
# its title until the reader opens it (HTML's <details>; in Markdown, a table like any other).
Section = (tuple[str, Literal["text"], str] | tuple[str, Literal["table", "folded"], pd.DataFrame]
           | tuple[str, Literal["figure"], Path])
# The figures a centre looks for first, after the leaderboard: those of the registry, then the queue's wait and
# the GPU-hours (from jobs.json and the records: no scheduler is asked).
HPC_TITLE = "HPC figures per architecture (its completed runs: the mean; the queue's wait: the median; GPU-hours: the total)"
HPC_FIGURES = ("train_images_per_s", "infer_images_per_s", "gpu_util_mean", "data_wait_fraction", "mfu", "energy_per_image_j",
               "peak_gpu_memory_bytes", "peak_host_rss_bytes")


def _percent(value: float | None) -> str:
    return "-" if value is None or pd.isna(value) else f"{100 * float(value):.2f}"


def settings_table(spec: SweepSpec) -> pd.DataFrame:
    """The sweep's settings, one row each ("train.epochs", "cluster.gres", ...): nested values flattened."""
    rows: list[dict[str, str]] = []

    def add(name: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                add(f"{name}.{key}", inner)
        else:
            rows.append({"setting": name, "value": ", ".join(map(str, value)) if isinstance(value, list) else
                         "-" if value is None or value == {} else str(value)})
    for key in SETTINGS:
        add(key, getattr(spec, key))
    return pd.DataFrame(rows)


QUESTION_TEXT = (
    "The hypothesis (docs/science.md, 'The paper's question'): the paper fed every network ResNet50's caffe input. With Keras' "
    "weights that input is right for ResNet50, VGG16 and VGG19 and wrong for the five others, which would explain "
    "Table 2's split along Keras' modes. Keras' weights cannot be loaded here; timm's can, and each was trained on its "
    "own input (column 'timm'), so caffe input is wrong for all eight. Columns: 'timm' each network's own input; "
    "'paper' the mode its Keras application uses (right for timm's weights only where it equals timm's input); "
    "'caffe' caffe input for all; 'as hypothesised' the paper's condition recreated with timm's weights: the right "
    "input for the caffe-mode networks (timm), caffe's for the others. If the hypothesis holds, 'as hypothesised' "
    "shows Table 2's split and 'timm' does not. Variants that feed the same input ran once and share a cell.")


def own_settings(spec: SweepSpec) -> pd.DataFrame:
    """Per architecture, the settings its runs trained with that an architecture may set for itself."""
    from harness.training.config import config_for

    first: dict[str, Any] = {}
    for run in spec.runs:
        first.setdefault(run.model, config_for(spec, run))
    return pd.DataFrame([{"model": m, **{k: getattr(c, k) for k in OWN_SETTINGS}} for m, c in first.items()])


def paper_question(board: pd.DataFrame, spec: SweepSpec) -> tuple[str, pd.DataFrame]:
    """The ablation's table: per architecture, test accuracy under each input, the paper's condition recreated,
    Table 2, and which inputs are right for the weights loaded; with a sentence on what the sweep can tell."""
    from harness.zoo import ABLATION
    from harness.zoo.lookup import preprocessing_for, spec_of

    sizes = spec.image_sizes()
    paper = {p["model"]: p for p in paper_table()}
    rows = []
    for arch in [m for m in spec.models if m in set(board["architecture"])]:  # the order the sweep names them
        group = board[board["architecture"] == arch]
        accuracy = {}
        for _, row in group.iterrows():
            for name in str(row["variant"]).split("-"):
                accuracy[name] = row["accuracy"]
        keras = spec_of(arch).keras_mode
        own = preprocessing_for(arch, "timm", sizes[arch])
        right = [n for n in ABLATION if preprocessing_for(arch, n, sizes[arch]).normalisation_key == own.normalisation_key]
        hypothesised = accuracy.get("timm") if keras == PAPER_PROBABLE_MODE else accuracy.get(PAPER_PROBABLE_MODE)
        rows.append({"model": arch, "Keras mode": keras, "timm %": _percent(accuracy.get("timm")),
                     "paper %": _percent(accuracy.get(PAPER_PREPROCESSING)), "caffe %": _percent(accuracy.get(PAPER_PROBABLE_MODE)),
                     "as hypothesised %": _percent(hypothesised), "Table 2 %": _percent(paper.get(arch, {}).get("accuracy")),
                     "right input for timm's weights": ", ".join(right)})
    weights = spec.train.get("weights")
    text = QUESTION_TEXT
    if weights != "imagenet":
        text += (f" This sweep used --weights {weights}: the hypothesis concerns inputs matched to pretrained weights, "
                 "so without ImageNet weights (and --mode transfer) these accuracies cannot answer it.")
    return text, pd.DataFrame(rows)


def weights_table(spec: SweepSpec) -> tuple[str, pd.DataFrame]:
    """Which ImageNet weights the sweep loaded beside the Keras weights the paper loaded, per architecture."""
    from harness.zoo.models import weights_provenance

    weights = spec.train.get("weights")
    if weights != "imagenet":
        return (f"This sweep used --weights {weights}: neither the paper's Keras ImageNet weights nor timm's. The "
                "paper's are listed below for reference.", pd.DataFrame([weights_provenance(m) for m in spec.models])
                [["model", "keras_weights", "keras_mode"]])
    table = pd.DataFrame([weights_provenance(m) for m in spec.models])
    differ = table.loc[table["same_weights"].ne(True), "model"].tolist()
    text = ("The ImageNet weights are timm's, not Keras' (the paper's), for " + ", ".join(differ) +
            ": other checkpoints, trained with other recipes and on other input; only weights marked 'same' are "
            "Keras' own, ported.") if differ else "Every architecture's timm weights are Keras' own, ported."
    table["same"] = table["same_weights"].map({True: "same", False: "differ", None: "none in timm"})
    return text, table[["model", "timm_weights", "timm_recipe", "timm_input", "keras_weights", "same"]]


def view_table(view: View) -> pd.DataFrame:
    """A view (analysis.board) as a page lays it out: each column under its header, each cell as every
    table shows it (analysis.cells)."""
    return pd.DataFrame([[cells.fmt(c, row.get(c)) for c in view.columns] for row in view.rows],
                        columns=[cells.label(c) for c in view.columns])


def leaderboard_text() -> str:
    """What the leaderboard's means and intervals are, and what its groups say."""
    return ("Mean over seeds (runs that collapsed left out and named). The accuracy's and the AUC's 95% intervals count "
            "the seeds (initialisation, data order) and the test units (the test photographs or identities where the "
            "manifest has groups, else the test images) together, over new seeds and new test units unless the caption "
            "says otherwise (docs/science.md, 'Trustworthy results'); the other metrics' are over the seeds. Architectures "
            "that share a letter in 'group' are those a paired test cannot tell apart at 5% after Holm's correction for the "
            "number of pairs (a compact letter display; a pair not tested counts as not separable).")


def queue_wait(results: SweepResults, record: RunRecord) -> tuple[float | None, str | None]:
    """(seconds from the submission that queued the run to the start of its training, the reason when null), from
    jobs.json and the record: the wait for the preprocessing job, a node (or a local worker) and the job's start-up
    together; for a requeued run, until its last attempt started."""
    try:
        submission = results.latest.get(record.run_id)
    except DamagedFile as err:
        return None, str(err)
    if submission is None or not record.started_at:
        return None, "no submission time or start time on disk"
    try:
        waited = datetime.fromisoformat(record.started_at) - datetime.fromisoformat(submission.submitted)
    except (TypeError, ValueError):  # a time that is not ISO 8601, or one with a time zone and one without
        return None, "a submission or start time that is not an ISO 8601 time"
    return waited.total_seconds(), None


def hpc_table(results: SweepResults) -> pd.DataFrame:
    """The HPC figures (HPC_FIGURES, the queue's wait, GPU-hours), one row each, one column per architecture:
    the mean over its completed runs (the median wait, the GPU-hours summed), 'not measured' where no run has
    one, and why, as the records say."""
    completed = {label: records for label, records in results.completed().items() if records}
    table: dict[str, list[str]] = {"figure": [], "unit": [], **{label: [] for label in completed}, "not measured because": []}

    def add(name: str, label: str, unit: str, found: dict[str, list[tuple[float | None, str | None]]],
            combine: Any) -> None:
        table["figure"].append(label)
        table["unit"].append("%" if unit == "fraction" else unit)
        reasons: dict[str, list[str]] = {}  # why, and the rows that say so
        for row, pairs in found.items():
            values = [value for value, _ in pairs if value is not None]
            table[row].append(cells.fmt(name, combine(values)) if values else "not measured")
            for why in dict.fromkeys(why for value, why in pairs if value is None and why):
                reasons.setdefault(why, []).append(row)
        # one reason that every row without the figure gives stands alone; otherwise each says whose it is
        lacking = [row for row in found if table[row][-1] == "not measured"]
        if len(reasons) == 1 and list(reasons.values()) == [lacking]:
            table["not measured because"].append(next(iter(reasons)))
        else:
            table["not measured because"].append("; ".join(f"{', '.join(rows)}: {why}" for why, rows in reasons.items()) or "-")

    for name in HPC_FIGURES:
        figure = FIGURES[name]
        found = {row: [(figure.value(r), figure.why_missing(r)) for r in records] for row, records in completed.items()}
        add(name, figure.label.removesuffix(f" ({figure.unit})"), figure.unit, found, lambda v: sum(v) / len(v))
    add("queue_wait_s", "queue wait", "s", {row: [queue_wait(results, r) for r in records] for row, records in completed.items()},
        lambda v: float(pd.Series(v).median()))
    add("gpu_hours", "GPU-hours", "GPU-h", {row: [gpu_hours(r) for r in records] for row, records in completed.items()}, sum)
    return pd.DataFrame(table)


def leaderboard_sections(board: View) -> list[Section]:
    """The leaderboard as `leaderboard` shows it (every column). board: the leaderboard's table
    (board.leaderboard_view)."""
    return [("Leaderboard", "text", leaderboard_text()), ("", "table", view_table(board)), ("", "text", board.caption or "")]


def paper_sections(spec: SweepSpec, board: View) -> list[Section]:
    """Every figure measured, and the paper's views (`leaderboard --compare paper`)."""
    setting, paper = paper_views(spec, board.rows)
    figures = figures_view(board.rows)
    return [(figures.title or "", "table", view_table(figures)),
            ("Beside the paper's Table 2", "text", paper.caption or ""), ("", "table", view_table(paper)),
            ("This sweep's setting beside the paper's", "table", view_table(setting))]


def scaling_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """scaling.with_dle's rows as the report shows them: speedup and efficiency with their intervals over seeds."""
    def times(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}x"

    return pd.DataFrame({
        "architecture": [r["architecture"] for r in rows], "ranks": [r["ranks"] for r in rows], "nodes": [r["nodes"] for r in rows],
        "seeds": [r["seeds"] for r in rows],
        "train img/s": ["-" if r["train_images_per_s"] is None else f"{r['train_images_per_s']:,.1f}" for r in rows],
        "speedup (95% CI)": [times(r["speedup"]) + ("" if r["speedup_lo"] is None else
                             f" [{r['speedup_lo']:.2f}, {r['speedup_hi']:.2f}]") for r in rows],
        "efficiency %": [_percent(r["efficiency"]) for r in rows],
        "NVIDIA speedup": [times(r["dle_speedup"]) for r in rows],
        "NVIDIA efficiency %": [_percent(r["dle_efficiency"]) for r in rows],
    })


def variant_sections(board: pd.DataFrame, spec: SweepSpec) -> list[Section]:
    """The preprocessing ablation's answer to the paper's question, or accuracy by any other variant."""
    if not board["variant"].ne("").any():
        return []
    ablation = board["variant"].str.split("-").map(lambda names: PAPER_PROBABLE_MODE in names or PAPER_PREPROCESSING in names)
    if ablation.any():
        text, question = paper_question(board, spec)
        return [("The paper's question: own input, Keras' mode, caffe for all (test accuracy %)", "text", text),
                ("", "table", question)]
    by_variant = board.pivot_table(index="architecture", columns="variant", values="accuracy", sort=False).map(_percent)
    return [("Test accuracy % by variant", "table", by_variant.reset_index())]


def sections(results: SweepResults, board: View, figures: dict[Path, bytes]) -> list[Section]:
    """(title, kind, content) in report order; kind is text, table or figure. board: the sweep's leaderboard
    (board.leaderboard_view's table); figures: make_figures' drawings, by path."""
    spec = results.spec
    runs = completed_runs(results)
    weights_text, weights = weights_table(spec)
    out: list[Section] = [
        *leaderboard_sections(board),
        (HPC_TITLE, "table", hpc_table(results)),
        *paper_sections(spec, board),
    ]
    if runs and not spec.synthetic:
        accuracy, auc = robustness_table(runs, "accuracy"), robustness_table(runs, "auc")
        robust = pd.DataFrame({f"{condition} {name}": table[condition].map(_percent)
                               for condition in accuracy.columns for name, table in (("acc", accuracy), ("AUC", auc))})
        scope = robustness_scope(runs)
        same = f", on {scope}: clean and perturbed on the same images" if scope else ""
        out.append((f"Robustness (test accuracy % and AUC %{same})", "table", robust.reset_index(names="model")))
    out += variant_sections(pd.DataFrame(board.rows), spec)
    scaling = with_dle(scaling_rows(results.completed()))
    if scaling:
        out.append(("Scaling: speedup and efficiency against one rank (weak scaling, the batch per rank fixed)", "table",
                    scaling_table(scaling)))
    for model, table in cross_generator_tables(results).items():
        out.append((f"{model}: test AUC % across generators (rows: trained on, columns: tested on)", "table",
                    table.map(_percent).reset_index()))
    for path in figures:
        out.append((FIGURE_CAPTIONS[path.stem], "figure", path))
    return out + [
        ("Weights: timm's beside the paper's Keras weights", "text", weights_text),
        ("", "table", weights),
        ("Settings", "folded", settings_table(spec)),
        ("Each architecture's own settings (where it overrides the sweep's, or the sweep leaves it to the "
         "architecture)", "folded", own_settings(spec)),
    ]


def check_report_targets(sweep: SweepPaths, path: Path, rows: list[dict[str, Any]]) -> None:
    """Before anything is written: no link planted where the report or a figure goes, nothing but a file where
    the report goes (its rename over a folder would fail once the figures are written), and a run to report
    (rows: the sweep's leaderboard)."""
    refuse_symlink(path)
    if path.exists() and not path.is_file():
        raise UserError(f"{path} is {kind_of(os.stat(path).st_mode)}, not a report this command writes: remove it first")
    refuse_symlink(sweep.figures)
    if sweep.figures.is_dir():
        for planted in sweep.figures.iterdir():
            refuse_symlink(planted)
    if not any(row["seeds"] for row in rows):
        states = "; ".join(f"{row['model']}: {row['status']}" for row in rows)
        raise UserError(f"sweep {sweep.sweep_id} has no completed run: nothing to report ({states}); "
                        f"python -m harness status {sweep.sweep_id} shows where its runs stand")


def write_report(results: SweepResults, fmt: str = "html") -> Path:
    """Write report.html (self-contained) or report.md (beside figures/); returns its path. Every table
    and figure is made before the first file is written: a report that fails leaves none behind."""
    sweep = results.sweep
    if is_every_node(results):
        raise UserError(f"sweep {sweep.sweep_id} ran each architecture on every node (sweep --every-node): its table is "
                        f"the per-node one, python -m harness leaderboard {sweep.sweep_id}; a report is of a sweep that "
                        "ran each architecture once")
    path = sweep.report(fmt)
    board = leaderboard_view(results).table
    check_report_targets(sweep, path, board.rows)
    figures = make_figures(results, board.rows)
    text = report_text(sweep, sections(results, board, figures), figures, fmt)

    def figures_then_report(tmp: Path) -> None:
        # within the report's own temporary file, made first: a folder where it cannot be made fails before any
        # figure is replaced
        tmp.write_text(text)
        write_figures(sweep, figures)

    write_atomic(path, figures_then_report)
    return path


NUMBER = re.compile(r"[-+]?[0-9][0-9,]*(\.[0-9]+)?%?( \[[-+0-9.,% ]+\])?|-|not measured|")  # 91.20, 1,234, 80.25% [77.1, 83.4], -


def numeric_columns(table: pd.DataFrame) -> list[bool]:
    """Which columns hold numbers (right-aligned in a table) rather than text (left-aligned)."""
    return [all(NUMBER.fullmatch(str(v)) for v in table[c]) and not all(str(v) == "-" for v in table[c]) for c in table]


def markdown_table(table: pd.DataFrame) -> str:
    """A Markdown table whose columns of numbers are right-aligned and whose text is left-aligned."""
    def cells(values: Any) -> str:
        return "| " + " | ".join(for_markdown(str(v)) for v in values) + " |"

    rule = "|" + "|".join("---:" if n else ":---" for n in numeric_columns(table)) + "|"
    return "\n".join([cells(table.columns), rule, *(cells(row) for row in table.itertuples(index=False))])


def html_table(table: pd.DataFrame) -> str:
    """An HTML table whose columns of numbers are right-aligned and whose text is left-aligned."""
    align = [' class="number"' if n else "" for n in numeric_columns(table)]
    head = "".join(f"<th{a}>{html.escape(str(c))}</th>" for c, a in zip(table.columns, align))
    body = "".join("<tr>" + "".join(f"<td{a}>{html.escape(str(v))}</td>" for v, a in zip(row, align)) + "</tr>"
                   for row in table.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_figure(png: bytes, caption: str) -> str:
    """A PNG embedded in the page, with its caption."""
    data = base64.b64encode(png).decode()
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}" style="max-width:100%">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def html_page(title: str, body: list[str], width_px: int = 1200) -> str:
    """A self-contained page around body's HTML parts, its tables styled as html_table marks them."""
    style = (f"body{{font-family:sans-serif;max-width:{width_px}px;margin:auto}}table{{border-collapse:collapse;font-size:13px}}"
             "td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}.number{text-align:right}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style>"
            f"</head><body>{''.join(body)}</body></html>\n")


def report_text(sweep: SweepPaths, parts: list[Section], figures: dict[Path, bytes], fmt: str) -> str:
    """The report's text: Markdown linking figures/, or HTML with each figure embedded."""
    if fmt == "markdown":
        lines = [f"# Sweep {sweep.sweep_id}"]
        for section in parts:
            title = section[0]
            if section[1] == "figure":
                lines += [f"![{title}](figures/{section[2].name})", f"*{title}*"]
            else:
                lines += [f"## {for_markdown(title)}" if title else "",
                          for_markdown(section[2]) if section[1] == "text" else markdown_table(section[2])]
        return "\n\n".join(line for line in lines if line) + "\n"
    body = [f"<h1>Sweep {html.escape(sweep.sweep_id)}</h1>"]
    for section in parts:
        title = section[0]
        if section[1] == "figure":
            body.append(html_figure(figures[section[2]], title))
        elif section[1] == "folded":
            body.append(f"<details><summary><h2 style='display:inline'>{html.escape(title)}</h2></summary>"
                        f"{html_table(section[2])}</details>")
        else:
            if title:
                body.append(f"<h2>{html.escape(title)}</h2>")
            body.append(html_table(section[2]) if section[1] == "table" else f"<p>{html.escape(section[2])}</p>")
    return html_page(f"Sweep {sweep.sweep_id}", body)
