"""Commands that follow a sweep's jobs: status (and --watch), cancel, logs."""
import argparse
import sys
from typing import Any

from harness.cli.options import add_format, add_interval, add_results, add_sweep
from harness.errors import UserError

# The columns that make way on a narrow terminal, first listed first (--wide shows them).
STATUS_OPTIONAL = ("partition", "job_id", "requeues", "energy_j", "elapsed", "node", "val_accuracy", "epoch")
# A status table lists every run of a sweep up to SHOWN_RUNS (the paper's eight architectures at twelve seeds);
# a larger sweep's shows its runs counted by state and the first ATTENTION_ROWS that need attention (--all: every run).
SHOWN_RUNS, ATTENTION_ROWS = 100, 20
STATUS_COLUMNS = ["run_id", "state", "job_id", "partition", "node", "elapsed", "epoch", "val_accuracy", "requeues", "reason"]


def _status_rows(sweep_id: str, statuses: list, preprocess: dict[str, Any], size: int | None = None) -> tuple[list, list[str], str]:
    """The status table's rows, columns and title (size: the sweep's bytes on disk, where the title says them)."""
    from harness.store.disk import human_bytes

    running = all(isinstance(preprocess.get(k), (int, float)) for k in ("done", "total", "images_per_s"))
    done = f", {preprocess['done']}/{preprocess['total']} images at {preprocess['images_per_s']:.0f}/s" if running else ""
    done += f" ({preprocess['reason']})" if preprocess.get("reason") else ""
    rows, columns = [], STATUS_COLUMNS + (["energy_j"] if any(s.energy_j for s in statuses) else [])
    for status in statuses:
        row = status.as_dict()
        if row["epoch"] is not None and row["epochs"]:
            row["epoch"] = f"{row['epoch']}/{row['epochs']}"
        rows.append(row)
    on_disk = f" ({human_bytes(size)} on disk)" if size is not None else ""
    return rows, columns, f"sweep {sweep_id}{on_disk}; preprocessing: {preprocess.get('state')}{done}"


def _summary(sweep_id: str, statuses: list, preprocess: dict[str, Any], caption: str | None = None) -> list:
    """A sweep of more than SHOWN_RUNS runs as tables (board.View): its runs counted by architecture and state,
    then the first ATTENTION_ROWS runs that need attention, saying how many were left out (--all lists every run)."""
    from harness.analysis.board import View
    from harness.analysis.status import needs_attention, state_counts

    counts = state_counts(statuses)
    _, _, title = _status_rows(sweep_id, [], preprocess)
    title = f"{title}; {len(statuses):,} runs by architecture and state"
    attention = [s for s in statuses if needs_attention(s)]
    if not attention:
        none = f"no run needs attention: status --all lists each of the {len(statuses):,} runs"
        return [View(counts, list(counts[0]), title, "; ".join(filter(None, [caption, none])))]
    rows, columns, _ = _status_rows(sweep_id, attention[:ATTENTION_ROWS], preprocess)
    more, completed = len(attention) - len(rows), len(statuses) - len(attention)
    left = " and ".join(part for part in (f"{more:,} more that need attention" if more else "",
                                          f"{completed:,} completed" if completed else "") if part)
    return [View(counts, list(counts[0]), title, caption),
            View(rows, columns, f"the {len(attention):,} runs that need attention" + (f", the first {len(rows)}" if more else ""),
                 f"not listed: {left} runs; status --all lists every run" if left else None, STATUS_OPTIONAL)]


def _status_table(sweep_id: str, statuses: list, preprocess: dict[str, Any]) -> Any:
    """The live table of --watch, at the terminal's width (a sweep of more than SHOWN_RUNS: its summary)."""
    from rich.console import Group

    from harness.cli.render import out, table

    if len(statuses) > SHOWN_RUNS:
        return Group(*(table(v.rows, v.columns, v.title, v.caption, optional=v.optional, width=out.width)
                       for v in _summary(sweep_id, statuses, preprocess)))
    rows, columns, title = _status_rows(sweep_id, statuses, preprocess)
    return table(rows, columns, title, optional=STATUS_OPTIONAL, width=out.width)


def watch(sweep: Any, interval: float | None = None) -> int:
    """Show the sweep's status until every run is final; exit 0 only when all completed. Ctrl-C stops the
    following, not the runs: that is said, and how to follow or cancel them."""
    from harness.cli.render import say

    try:
        statuses = follow(sweep, interval)
    except KeyboardInterrupt:
        say(f"sweep {sweep.sweep_id}: no longer followed, its runs go on in the background: python -m harness status "
            f"{sweep.sweep_id} --watch follows them, python -m harness cancel {sweep.sweep_id} cancels them")
        raise
    failed = [s.run_id for s in statuses if s.state != "COMPLETED"]
    if failed:
        say(f"{len(failed)} runs did not complete: {', '.join(failed)}")
    return 1 if failed else 0


def follow(sweep: Any, interval: float | None = None) -> list:
    """The sweep's status until every run is final; returns the last. On a terminal a live table; otherwise
    one timestamped line per change, never wrapped."""
    from datetime import datetime

    from rich.live import Live

    from harness import sweeps
    from harness.cli.render import out
    from harness.inert import for_terminal

    statuses: list = []
    if out.is_terminal:
        with Live(console=out, refresh_per_second=1, transient=True) as live:
            for statuses, preprocess in sweeps.statuses_until_final(sweep, interval):
                live.update(_status_table(sweep.sweep_id, statuses, preprocess))
        out.print(_status_table(sweep.sweep_id, statuses, preprocess))
    else:
        last = ""
        for statuses, preprocess in sweeps.statuses_until_final(sweep, interval):
            line = "; ".join(f"{s.run_id} {s.state}" + (f" {s.epoch}/{s.epochs}" if s.epoch else "") for s in statuses)
            if line != last:
                why = f" ({preprocess['reason']})" if preprocess.get("reason") else ""
                print(for_terminal(f"{datetime.now().astimezone().isoformat(timespec='seconds')} {sweep.sweep_id}: "
                                   f"preprocessing {preprocess.get('state')}{why}; {line}"), file=sys.stderr, flush=True)
                last = line
    return statuses


def cmd_status(args: argparse.Namespace) -> int:
    from harness.analysis.load import SweepResults
    from harness.analysis.makespan import span_line, sweep_span
    from harness.analysis.status import dataset_groups, sweep_status
    from harness.cli.render import print_rows, print_table
    from harness.store.disk import folder_bytes
    from harness.store.paths import find_sweep

    sweep = find_sweep(args.results, args.sweep)
    if args.watch:
        return watch(sweep, args.interval)
    if args.all and args.format != "table":
        raise UserError(f"--all lists every run in a --format table; --format {args.format} lists every run already")
    results = SweepResults(sweep)
    statuses, preprocess = sweep_status(results)
    span = sweep_span(results)  # from the same sacct answer as the states
    groups, no_groups = dataset_groups(results.spec.dataset)
    if args.format == "table":
        caption = "; ".join(line for line in (span_line(span) if span else None, no_groups) if line) or None
        if len(statuses) > SHOWN_RUNS and not args.all:  # its size on disk left out too: a walk of every run's files
            for view in _summary(sweep.sweep_id, statuses, preprocess, caption):
                print_table(view.rows, view.columns, view.title, view.caption, optional=view.optional, wide=args.wide)
            return 0
        rows, columns, title = _status_rows(sweep.sweep_id, statuses, preprocess, folder_bytes(sweep.folder))
        print_table(rows, columns, title, optional=STATUS_OPTIONAL, wide=args.wide, caption=caption)
    else:
        print_rows(args.format, [s.as_dict() for s in statuses], STATUS_COLUMNS,
                   meta={"sweep_id": sweep.sweep_id, "bytes": folder_bytes(sweep.folder), "preprocess": preprocess,
                         "span": span, "dataset_groups": groups, "dataset_groups_reason": no_groups} if args.meta else None)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from harness import sweeps
    from harness.cli.render import say
    from harness.store.paths import find_sweep

    sweep = find_sweep(args.results, args.sweep)
    runs = None if args.runs is None else [r.strip() for r in args.runs.split(",") if r.strip()]
    cancelled = sweeps.cancel(sweep, runs)
    if cancelled:
        say(f"sweep {sweep.sweep_id}: cancelled {len(cancelled)} run{'s' * (len(cancelled) > 1)} ({', '.join(cancelled)})")
    else:
        say(f"sweep {sweep.sweep_id}: nothing to cancel, {'those runs' if runs else 'every run'} ended or never "
            "submitted")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    from harness import sweeps
    from harness.store.disk import human_bytes
    from harness.store.paths import find_sweep

    what, freed = sweeps.clean(find_sweep(args.results, args.sweep), args.results, cache=args.cache)
    print(f"freed {human_bytes(freed)}: {what}")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from harness import sweeps
    from harness.inert import for_terminal
    from harness.store.paths import find_sweep

    sweep_ref, _, run = args.run.rpartition("/")
    if not sweep_ref or not run:
        raise UserError(f"logs takes SWEEP/RUN (a run id or an architecture), not {args.run!r}")
    sweep = find_sweep(args.results, sweep_ref)
    for chunk in sweeps.read_log(sweep, run, "err" if args.err else "out", follow=args.follow):
        sys.stdout.write(for_terminal(chunk))  # a job's output is no order to the terminal
        sys.stdout.flush()
    return 0


def add_commands(commands: Any) -> None:
    status = commands.add_parser("status", help="where every job of a sweep stands")
    add_sweep(status)
    add_format(status, meta=True)
    status.add_argument("--watch", action="store_true",
                        help="follow until every run is final (exit 0 when all completed); plain lines when not on a terminal")
    add_interval(status)
    status.add_argument("--all", action="store_true",
                        help=f"table: a row for every run, however many (a sweep of more than {SHOWN_RUNS} runs shows its "
                        "runs counted by state, and those that need attention)")
    status.set_defaults(func=cmd_status)

    cancel = commands.add_parser("cancel", help="cancel a sweep's jobs (queued or running)")
    add_sweep(cancel)
    cancel.add_argument("--runs", help="comma-separated run ids or architectures (default: every job of the sweep)")
    cancel.set_defaults(func=cmd_cancel)

    clean = commands.add_parser("clean", help="free disk: a sweep's resume checkpoints of completed runs, or the image caches")
    add_sweep(clean)
    what = clean.add_mutually_exclusive_group()
    what.add_argument("--checkpoints", action="store_true",
                      help="the completed runs' state.pt and state.prev.pt (best.pt, records and scores stay); the default")
    what.add_argument("--cache", action="store_true",
                      help="the results folder's image caches, shared by its sweeps (refused while a sweep there has runs to go)")
    clean.set_defaults(func=cmd_clean)

    logs = commands.add_parser("logs", help="a run's job log (stdout, or --err), for its latest attempt")
    logs.add_argument("run", metavar="SWEEP/RUN", help="a sweep id (or prefix) and a run id or architecture")
    logs.add_argument("--err", action="store_true", help="the job's stderr instead of its stdout")
    logs.add_argument("--follow", action="store_true",
                      help="keep printing as the log grows, until the run ends (then the run's own log, where its job "
                      "names one once it starts)")
    add_results(logs)
    logs.set_defaults(func=cmd_logs)
