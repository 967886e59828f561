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

import pandas as pd

from harness.errors import UserError
from harness.store.figures import FIGURES
from harness.store.paths import perflog
from harness.store.perflog import PerfEntry, read_perflog

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


def entries_frame(entries: list[PerfEntry], metric: str) -> pd.DataFrame:
    """One row per entry: identity, the series' system and settings as text, the software, the metric."""
    rows = []
    for e in entries:
        label = f"{e.architecture} [{e.variant}]" if e.variant else e.architecture
        rows.append({"time": e.time, "sweep": e.sweep, "run": e.run, "model": label, "architecture": e.architecture,
                     "seed": e.seed,
                     "cluster": e.system.get("cluster"), "partition": e.system.get("partition"),
                     "gpu": e.system.get("gpu_name") or "cpu", "system": system_text(e.system),
                     "settings": settings_text(e.settings),
                     **{column: e.system.get(key) for column, key in SOFTWARE.items()}, metric: e.value(metric)})
    frame = pd.DataFrame(rows)
    frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    return frame


def _joined(values: pd.Series) -> str:
    seen = [str(v)[:12] if v is not None else "-" for v in dict.fromkeys(values.where(values.notna(), None))]
    return ", ".join(seen)


def history_points(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One point per (series, sweep): its date (the last run's end), the mean of metric over the sweep's
    seeds that measured it, how many did, its ratio to the series' previous point, and the software."""
    keys = ["model", "system", "settings", "partition", "gpu"]
    grouped = frame.groupby([*keys, "sweep"], dropna=False, sort=False)
    points = grouped.agg(time=("time", "max"), value=(metric, "mean"), seeds=(metric, "count")).reset_index()
    for column in SOFTWARE:
        points[column] = grouped[column].agg(_joined).to_numpy()
    points = points.sort_values([*keys, "time"], kind="stable")
    points["change"] = points.groupby(keys, dropna=False)["value"].transform(lambda v: v / v.shift(1))
    return points.sort_values(["time", *keys], kind="stable").reset_index(drop=True)


def load_history(results: Path, metric: str, model: str | None = None,
                 partition: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The points of metric, filtered by architecture and partition, and the perflog's skipped lines."""
    if metric not in FIGURES:
        raise UserError(f"unknown metric {metric!r}; the performance log has {', '.join(FIGURES)}")
    path = perflog(results)
    if not path.is_file():
        raise UserError(f"no performance log at {path}: every completed run of a sweep under {results} adds a line to it")
    entries, problems = read_perflog(path)
    if not entries:
        raise UserError(f"the performance log {path} has no readable entry")
    frame = entries_frame(entries, metric)
    chosen = frame
    if model is not None:
        chosen = chosen[(chosen["model"] == model) | (chosen["architecture"] == model)]
    if partition is not None:
        chosen = chosen[chosen["partition"] == partition]
    if chosen.empty:
        raise UserError(f"no entry of {path} matches{f' --model {model}' if model else ''}"
                        f"{f' --partition {partition}' if partition else ''}; it has models "
                        f"{', '.join(sorted(frame['model'].unique()))} and partitions {', '.join(sorted(frame['partition'].unique()))}")
    return history_points(chosen, metric), problems


def history_rows(points: pd.DataFrame, metric: str) -> list[dict[str, Any]]:
    """The points as plain rows (table, csv, json): the metric's value under its own name."""
    rows = []
    for point in points.to_dict("records"):
        rows.append({"date": point["time"].strftime("%Y-%m-%d %H:%M"), "time": point["time"].isoformat(),
                     "model": point["model"], "system": point["system"], "partition": point["partition"],
                     "gpu": point["gpu"], "settings": point["settings"], "sweep": point["sweep"],
                     "seeds": int(point["seeds"]), metric: None if pd.isna(point["value"]) else float(point["value"]),
                     "unit": FIGURES[metric].unit,
                     "change": None if pd.isna(point["change"]) else float(point["change"]),
                     **{column: point[column] for column in SOFTWARE}})
    return rows


def plot_history(points: pd.DataFrame, metric: str, path: Path, title: str = "", force: bool = False) -> Path:
    """metric against date, one line per partition or GPU type (and per architecture and settings where
    the points hold several), written atomically as a PNG, where the user could mean it (check_output:
    an existing file is replaced where this wrote it, or force)."""
    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

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
    for number, (key, series) in enumerate(points.sort_values("time").groupby(keys, dropna=False, sort=True)):
        label = for_mathtext(" · ".join(str(k) for k in (key if isinstance(key, tuple) else (key,))))
        times = series["time"].dt.tz_convert(None)
        ax.plot(times, series["value"], marker="o", color=f"C{number % 10}", label=label)
        for (_, before), (_, after), value in zip(series.iterrows(), series.iloc[1:].iterrows(), series["value"].iloc[1:]):
            changed = [f"{c} {before[c]}→{after[c]}" for c in ("driver", "cuda", "torch") if before[c] != after[c]]
            if changed and not pd.isna(value):  # an upgrade between two points: say which, where it shows
                ax.annotate(for_mathtext("\n".join(changed)), (after["time"].tz_convert(None), value), textcoords="offset points",
                            xytext=(4, 6), fontsize=7, color=f"C{number % 10}")
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
