"""A figure over time, from the results folder's performance log (results/perflog.jsonl): one series per
(architecture, system, settings), one point per sweep (the mean over its seeds), so that "the gpu
partition got slower since last month" is one command: `python -m harness history`.

The system of a series is where it ran (cluster, partition, GPU name and count); what changes along a
series (driver, CUDA, torch, the harness's commit) is shown beside each point, so a step in the figure
can be read against the upgrade that made it. Settings that change a figure (image size, batch,
precision, TF32, channels_last, compile, mode, epochs, synthetic inputs) split series: a point never averages
runs made with different ones.
"""
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.errors import UserError
from harness.store.figures import FIGURES
from harness.store.paths import perflog
from harness.store.perflog import system_key
from harness.store.perflog_index import PerflogColumns, read_columns

COLUMNS = ["date", "model", "system", "settings", "sweep", "seeds", "change", "torch", "cuda", "driver", "commit"]
SOFTWARE = {"torch": "torch", "cuda": "cuda", "driver": "driver", "commit": "git_commit"}
SOFTWARE_MARK = "harness history"  # the PNG's Software field: a figure --out may replace without --force


def _flag(value: Any) -> str:
    return "-" if value is None else ("on" if value is True else "off" if value is False else str(value))


def settings_text(settings: dict[str, Any]) -> str:
    """The settings of a series, short: `64px b32 lr 0.001 adam fp32 tf32 - cl off compile off finetune 1ep`
    (a warm-up, where there is one, after the lr: `lr 0.0001 w1`; ranks, where more than one, at the end:
    `x4 lr linear sync-bn`; an entry from before ranks ran on one), and `synthetic` last for synthetic inputs
    (sweep --synthetic): a series of its own."""
    size, warmup, ranks = settings.get("image_size"), settings.get("warmup_epochs"), settings.get("world_size") or 1
    scaling = f" lr {settings.get('lr_scaling')}" if settings.get("lr_scaling", "none") != "none" else ""
    distributed = f" x{ranks}{scaling}{' sync-bn' if settings.get('sync_bn') else ''}" if ranks > 1 else ""
    return (f"{size or 'own'}px b{settings.get('batch_size')} lr {_flag(settings.get('lr'))}{f' w{warmup}' if warmup else ''} "
            f"{settings.get('optimizer')} {settings.get('precision')} tf32 {_flag(settings.get('tf32'))} "
            f"cl {_flag(settings.get('channels_last'))} compile {_flag(settings.get('compile'))} "
            f"{settings.get('mode')} {settings.get('epochs')}ep{distributed}{' synthetic' if settings.get('synthetic') else ''}")


def system_text(system: dict[str, Any]) -> str:
    """Where a series ran: `cluster/partition GPU xN` (or `cpu`)."""
    gpu = f"{system.get('gpu_name')} x{system.get('gpu_count') or 1}" if system.get("gpu_name") else "cpu"
    return f"{system.get('cluster')}/{system.get('partition')} {gpu}"


def _short(value: Any) -> str:
    """A software version as a point shows it: its first 12 characters (a commit), - where unknown."""
    return "-" if value is None else str(value)[:12]


def perflog_frame(found: PerflogColumns) -> pd.DataFrame:
    """One row per entry read (store.perflog_index.read_columns): its identity, where it ran (cluster,
    partition, gpu, gpu_count, the system as text and as a reference's key, and system_id, one number per
    distinct system), its settings as text, the software (shown short), and each figure read. Lines with
    the same settings or system share one, described once."""
    columns = found.columns
    systems = {id(system): system for system in columns["system"]}
    described = {key: {"cluster": system.get("cluster"), "partition": system.get("partition"),
                       "gpu": system.get("gpu_name") or "cpu", "gpu_count": system.get("gpu_count"),
                       "system": system_text(system), "system_key": system_key(system), "system_id": number,
                       **{column: _short(system.get(name)) for column, name in SOFTWARE.items()}}
                 for number, (key, system) in enumerate(systems.items())}
    settings = {key: settings_text(values) for key, values in {id(values): values for values in columns["settings"]}.items()}
    where = [described[id(system)] for system in columns["system"]]
    return pd.DataFrame({
        "time": pd.to_datetime(columns["time"], utc=True, format="ISO8601"), "sweep": columns["sweep"], "run": columns["run"],
        "model": [f"{name} [{variant}]" if variant else name for name, variant in zip(columns["architecture"], columns["variant"])],
        "architecture": columns["architecture"], "seed": columns["seed"],
        **{column: [place[column] for place in where] for column in next(iter(described.values()), {})},
        "settings": [settings[id(values)] for values in columns["settings"]],
        **{name: np.frombuffer(columns[name], dtype=float) for name in FIGURES if name in columns}})


def _software(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per (series, sweep) of keys, the software of the systems its runs ran on: most points ran on one; a
    point on several gets each column's distinct values joined."""
    software = frame.drop_duplicates("system_id").set_index("system_id")[list(SOFTWARE)]
    grouped = frame.groupby(keys, dropna=False, sort=False)["system_id"]
    first = grouped.min()
    found = software.loc[first].set_axis(first.index)
    several = frame[grouped.transform("min") != grouped.transform("max")]  # the runs of a point on several systems
    for key, ids in several.groupby(keys, dropna=False, sort=False)["system_id"].unique().items():
        found.loc[key] = [", ".join(dict.fromkeys(software.loc[ids, column])) for column in SOFTWARE]
    return found


def history_points(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One point per (series, sweep): its date (the last run's end), the mean of metric over the sweep's
    seeds that measured it, how many did, its ratio to the series' previous point, and the software."""
    keys = ["model", "system", "settings", "partition", "gpu"]
    grouped = frame.groupby([*keys, "sweep"], dropna=False, sort=False)
    points = grouped.agg(time=("time", "max"), value=(metric, "mean"), seeds=(metric, "count")).join(_software(frame, [*keys, "sweep"]))
    points = points.reset_index().sort_values([*keys, "time"], kind="stable")
    points["change"] = points["value"] / points.groupby(keys, dropna=False)["value"].shift(1)
    return points.sort_values(["time", *keys], kind="stable").reset_index(drop=True)



def load_history(results: Path, metric: str, model: str | None = None,
                 partition: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The points of metric, filtered by architecture and partition, and the perflog's skipped lines."""
    if metric not in FIGURES:
        raise UserError(f"unknown metric {metric!r}; the performance log has {', '.join(FIGURES)}")
    path = perflog(results)
    if not path.is_file():
        raise UserError(f"no performance log at {path}: every completed run of a sweep under {results} adds a line to it")
    found = read_columns(path, [metric], architecture=model, partition=partition)
    if not len(found):
        every = read_columns(path).columns
        if not every["line"]:
            raise UserError(f"the performance log {path} has no readable entry")
        models = {f"{name} [{variant}]" if variant else name for name, variant in zip(every["architecture"], every["variant"])}
        raise UserError(f"no entry of {path} matches{f' --model {model}' if model else ''}"
                        f"{f' --partition {partition}' if partition else ''}; it has models "
                        f"{', '.join(sorted(models))} and partitions {', '.join(sorted(map(str, set(every['partition']))))}")
    return history_points(perflog_frame(found), metric), found.problems


def history_rows(points: pd.DataFrame, metric: str) -> list[dict[str, Any]]:
    """The points as plain rows (table, csv, json): the metric's value under its own name."""
    def numbers(series: pd.Series) -> list[float | None]:
        return [None if pd.isna(v) else float(v) for v in series]

    columns = {"date": points["time"].dt.strftime("%Y-%m-%d %H:%M"), "time": points["time"].map(pd.Timestamp.isoformat),
               **{name: points[name] for name in ("model", "system", "partition", "gpu", "settings", "sweep")},
               "seeds": points["seeds"].astype(int).tolist(), metric: numbers(points["value"]),
               "unit": [FIGURES[metric].unit] * len(points), "change": numbers(points["change"]),
               **{column: points[column] for column in SOFTWARE}}
    names = list(columns)
    return [dict(zip(names, values)) for values in zip(*(list(c) if isinstance(c, list) else c.tolist() for c in columns.values()))]


def plot_history(points: pd.DataFrame, metric: str, path: Path, title: str = "", force: bool = False) -> Path:
    """metric against date, one line per partition or GPU type (and per architecture and settings where
    the points hold several), written atomically as a PNG, where the user could mean it (check_output:
    an existing file is replaced where this wrote it, or force)."""
    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    from harness.analysis.colours import LINE_STYLES, MARKERS, architecture_colours
    from harness.inert import for_mathtext
    from harness.store.atomic import write_atomic
    from harness.store.user_files import check_output

    check_output(path, "--out", b"Software\x00" + SOFTWARE_MARK.encode(), force)

    keys = ["partition", "gpu"]
    if points["model"].nunique() > 1:
        keys.insert(0, "model")
    if points["settings"].nunique() > 1:
        keys.append("settings")
    fig, ax = plt.subplots(figsize=(9, 4.8))
    # the architecture's colour (the report's, the dashboard's); its several series a marker and line style each
    colours, series_of = architecture_colours(points["model"].astype(str)), dict[str, int]()
    for key, series in points.sort_values("time").groupby(keys, dropna=False, sort=True):
        label = for_mathtext(" · ".join(str(k) for k in (key if isinstance(key, tuple) else (key,))))
        times = series["time"].dt.tz_convert(None)
        model = str(series["model"].iloc[0])
        colour, number = colours[model], series_of.get(model, 0)
        series_of[model] = number + 1
        ax.plot(times, series["value"], marker=MARKERS[number % len(MARKERS)], linestyle=LINE_STYLES[number % len(LINE_STYLES)],
                color=colour, label=label)
        for (_, before), (_, after), value in zip(series.iterrows(), series.iloc[1:].iterrows(), series["value"].iloc[1:]):
            changed = [f"{c} {before[c]}→{after[c]}" for c in ("driver", "cuda", "torch") if before[c] != after[c]]
            if changed and not pd.isna(value):  # an upgrade between two points: say which, where it shows
                ax.annotate(for_mathtext("\n".join(changed)), (after["time"].tz_convert(None), value), textcoords="offset points",
                            xytext=(4, 6), fontsize=7, color=colour)
    if points["time"].nunique() == 1:  # one point: on a day's axis, not on matplotlib's years around it
        moment = points["time"].iloc[0].tz_convert(None)
        ax.set_xlim(moment - pd.Timedelta(hours=12), moment + pd.Timedelta(hours=12))
    unit = FIGURES[metric].unit
    ax.set(title=for_mathtext(title) or f"{metric} over time", xlabel="date (UTC)", ylabel=f"{metric} ({unit})")
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="partition · GPU" if keys == ["partition", "gpu"] else " · ".join(keys), title_fontsize=8)
    fig.tight_layout()
    try:
        write_atomic(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=120, metadata={"Software": SOFTWARE_MARK}))
    finally:
        plt.close(fig)
    return Path(path)
