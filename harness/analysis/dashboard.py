"""`dashboard`: one self-contained HTML page over a results folder's whole perflog, for a site: per
architecture a trend per system (cluster, partition, GPU) with the reference band, detection quality
against cost (AUC against energy per image and against GPU-hours, the Pareto front marked), the latest
sweep's leaderboard and its `check` verdict."""
import html
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from harness.analysis.board import leaderboard_view
from harness.analysis.check import References, check_sweep
from harness.analysis.colours import LINE_STYLES, MARKERS, architecture_colours
from harness.analysis.compare import shown as shown_figure
from harness.analysis.figures import note, plt, png_bytes
from harness.analysis.history import perflog_frame
from harness.analysis.load import SweepResults
from harness.analysis.nodes import is_every_node, node_rows, outlier_lines
from harness.analysis.report import html_figure, html_page, html_table, view_table
from harness.errors import UserError
from harness.inert import for_mathtext
from harness.store.atomic import write_text_atomic
from harness.store.figures import FIGURES
from harness.store.paths import list_sweeps, perflog
from harness.store.perflog_index import read_columns
from harness.store.user_files import check_output

TITLE = "harness dashboard"  # the page's title, by which --out knows a dashboard it may replace
TREND = "train_images_per_s"  # the figure each architecture's trend follows
ENERGY = "energy_per_image_j"
COSTS = {ENERGY: "energy per training image (J)", "gpu_hours": "GPU-hours per run"}
# A series of more points than this is drawn as its median per day (a span of 90 days or less) or per week,
# shaded between its quartiles: 12,500 sweeps on one axis are a solid band.
SUMMARISE_ABOVE = 60


def cost_frame(entries: pd.DataFrame) -> pd.DataFrame:
    """Per (architecture, system), the mean AUC and costs of the latest sweep that ran it there. GPU-hours:
    the run's wall time x the GPUs it held (none on a CPU). entries: history.perflog_frame's."""
    gpus = pd.to_numeric(entries["gpu_count"], errors="coerce").fillna(0)
    frame = entries[["architecture", "system", "sweep", "time", "auc", ENERGY]].assign(
        gpu_hours=(entries["wall_time_s"] * gpus / 3600).where(gpus > 0)).sort_values("time", kind="stable")
    frame = frame[frame["sweep"] == frame.groupby(["architecture", "system"])["sweep"].transform("last")]
    return frame.groupby(["architecture", "system"], as_index=False)[["auc", *COSTS]].mean()


def pareto_front(points: pd.DataFrame, cost: str) -> pd.DataFrame:
    """The points no other beats on both: a lower cost and a higher AUC (ties on both kept)."""
    ranked = points.dropna(subset=["auc", cost]).sort_values([cost, "auc"], ascending=[True, False])
    front, best = [], -1.0
    for _, point in ranked.iterrows():
        if point["auc"] > best:
            front.append(point)
            best = point["auc"]
    return pd.DataFrame(front)


def draw_trends(frame: pd.DataFrame, references: References | None) -> plt.Figure:
    """Per architecture, TREND against date, one line per system; the reference's band where one holds.
    frame: history.perflog_frame's."""
    systems = dict(zip(frame["system_key"], frame["system"]))  # a reference's key -> the series it is for
    # the architecture's colour (the report's); each system a marker and a line style of its own
    number = {system: n for n, system in enumerate(sorted(set(systems.values())))}
    architectures = sorted(frame["architecture"].unique())
    colours = architecture_colours(architectures)
    columns = min(4, len(architectures))
    rows = -(-len(architectures) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    for ax, architecture in zip(axes.flat, architectures):
        mine = frame[frame["architecture"] == architecture].sort_values("time")
        for system, series in mine.groupby("system", sort=True):
            style = {"color": colours[architecture], "linestyle": LINE_STYLES[number[system] % len(LINE_STYLES)]}
            times, values = series["time"].dt.tz_convert(None), series[TREND]
            if len(series) <= SUMMARISE_ABOVE:
                ax.plot(times, values, marker=MARKERS[number[system] % len(MARKERS)], label=for_mathtext(system), **style)
                continue
            period = "day" if times.max() - times.min() <= pd.Timedelta(days=90) else "week"
            per = values.groupby(times.dt.to_period(period[0].upper()).dt.start_time)
            middle, low, high = per.median(), per.quantile(0.25), per.quantile(0.75)
            ax.plot(middle.index, middle.to_numpy(), label=for_mathtext(f"{system}: {period}ly median"), **style)
            ax.fill_between(middle.index, low.to_numpy(), high.to_numpy(), color=colours[architecture], alpha=0.25, linewidth=0)
        for key, system in sorted(systems.items()):
            ref = references.for_system(architecture, TREND, key) if references and system in set(mine["system"]) else None
            if ref is not None:  # the band it allows; a side without a bound runs to the axis' edge
                low, high = ref.bounds()
                bottom, top = ax.get_ylim()
                ax.axhspan(bottom if low is None else low, max(top, ref.value) if high is None else high,
                           facecolor=colours[architecture], alpha=0.12, edgecolor="0.3",
                           linestyle=LINE_STYLES[number[system] % len(LINE_STYLES)], label=for_mathtext(f"reference {ref.system}"))
        if mine[TREND].isna().all():
            note(ax, f"no {TREND} measured")
        times = mine["time"].dt.tz_convert(None)
        if times.nunique() == 1:  # one sweep: its point on a day's axis, not on matplotlib's years around it
            ax.set_xlim(times.iloc[0] - pd.Timedelta(hours=12), times.iloc[0] + pd.Timedelta(hours=12))
        ax.set_title(for_mathtext(architecture), fontsize=10)
        ax.set_ylabel(f"{TREND} ({FIGURES[TREND].unit})", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(architectures):]:
        ax.axis("off")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def draw_quality_against_cost(points: pd.DataFrame) -> bytes:
    """AUC against each cost, one point per (architecture, system), the Pareto front joined and ringed."""
    fig, axes = plt.subplots(1, len(COSTS), figsize=(6 * len(COSTS), 4.4))
    for ax, (cost, label) in zip(axes, COSTS.items()):
        shown = points.dropna(subset=["auc", cost])
        if shown.empty:
            why = "no run measured its energy (it needs an NVIDIA GPU)" if cost == ENERGY else "no run held a GPU"
            note(ax, f"{label}: {why}")
        else:
            colours = architecture_colours(points["architecture"])
            ax.scatter(shown[cost], shown["auc"], color=[colours[a] for a in shown["architecture"]])
            for _, point in shown.iterrows():
                ax.annotate(for_mathtext(f"{point['architecture']} ({point['system']})"), (point[cost], point["auc"]), fontsize=6,
                            textcoords="offset points", xytext=(3, 3))
            front = pareto_front(shown, cost)
            ax.step(front[cost], front["auc"], where="post", color="0.2", label="Pareto front")  # no architecture's colour
            ax.scatter(front[cost], front["auc"], s=90, facecolors="none", edgecolors="0.2")
            ax.legend(fontsize=8)
        ax.set(xlabel=label, ylabel="test AUC", title=f"AUC against {label}")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return png_bytes(fig)


def dashboard_html(results: Path, references: References | None) -> str:
    """The page, every part made before anything is written."""
    found = read_columns(perflog(results), [TREND, "auc", ENERGY, "wall_time_s"])
    if not len(found):
        raise UserError(f"no performance log entry under {results}: every completed run of a sweep adds one")
    entries, problems, sweeps = perflog_frame(found), found.problems, list_sweeps(results)
    parts = [f"<h1>harness dashboard: {html.escape(str(results))}</h1>",
             f"<p>{len(entries)} completed runs of {entries['sweep'].nunique()} sweeps on "
             f"{entries['system_key'].nunique()} systems; made {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
             + (f"; {len(problems)} perflog lines skipped" if problems else "") + ".</p>"]
    # the newest sweep with a completed run (one still queued has nothing to check or rank yet)
    latest = next((results for results in map(SweepResults, reversed(sweeps)) if any(results.completed().values())), None)
    checked = pd.DataFrame([{**row, **{key: shown_figure(row["unit"], row[key]) for key in ("value", "reference")}}
                            for row in check_sweep(latest, references)] if latest and references else [],
                           columns=["model", "figure", "system", "value", "reference", "verdict", "reason"])
    # what needs attention first: the latest sweep's figures outside their references
    parts.append("<h2>Needs attention</h2>")
    failing = checked[checked["verdict"] == "FAIL"]
    judged = int(checked["verdict"].isin(["pass", "FAIL"]).sum())
    parts.append(html_table(failing) if len(failing) else "<p>" + html.escape(
        "No references given (dashboard --references FILE): nothing checked." if references is None else
        f"No FAIL verdict in the latest sweep's check ({judged} figures judged against their references).") + "</p>")
    outliers = outlier_lines(node_rows(latest)) if latest is not None and is_every_node(latest) else []
    if outliers and latest is not None:
        parts.append(f"<p>Outlier nodes of the latest sweep, {html.escape(latest.spec.sweep_id)} (sweep --every-node):</p><ul>"
                     + "".join(f"<li>{html.escape(line)}</li>" for line in outliers) + "</ul>")
    parts.append("<h2>Trends per architecture and system</h2>")
    parts.append(html_figure(png_bytes(draw_trends(entries, references)), f"{TREND} per sweep, one line per system "
                             f"(cluster/partition GPU); a system of more than {SUMMARISE_ABOVE} sweeps: its median per day "
                             "or week, shaded between the quartiles; an edged band: the reference that holds for that system"))
    parts.append("<h2>Detection quality against cost</h2>")
    costs = cost_frame(entries)
    if costs.dropna(subset=["auc"]).dropna(subset=list(COSTS), how="all").empty:
        parts.append("<p>No run measured an energy or held a GPU: there is no cost to set the AUC against (it needs an NVIDIA GPU).</p>")
    else:
        parts.append(html_figure(draw_quality_against_cost(costs), "test AUC against energy per image and against "
                                 "GPU-hours, per architecture and system (its latest sweep); ringed: the Pareto front"))
    if latest is not None:
        board = leaderboard_view(latest).table
        parts.append(f"<h2>Leaderboard of the latest sweep, {html.escape(latest.spec.sweep_id)}</h2>")
        parts.append(html_table(view_table(board)) + f"<p>{html.escape(board.caption or '')}</p>")
        if references is not None:
            parts.append("<h2>Check of the latest sweep</h2>")
            parts.append(html_table(checked))
    return html_page(TITLE, parts, width_px=1400)


def write_dashboard(results: Path, out: Path, references: References | None = None, force: bool = False) -> Path:
    """Write the dashboard to out (atomically), where the user could mean it (check_output: an existing
    file is replaced where it is a dashboard, or force); returns its path."""
    check_output(out, "--out", f"<title>{TITLE}</title>".encode(), force)
    page = dashboard_html(results, references)
    write_text_atomic(out, page)
    return out

