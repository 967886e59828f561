"""Commands that read a sweep's results: leaderboard, report, predict, and across sweeps history,
compare and check. Each reads a sweep once (analysis.load.SweepResults)."""
import argparse
from pathlib import Path
from typing import Any

from harness.cli.options import add_force, add_format, add_results, add_sweep, user_path
from harness.errors import UserError

# check: nothing was checked (the references hold no figure for the sweep's system, or every figure that has one
# is not comparable: its runs shared their node or GPU); 1: a figure outside its reference, whatever else
NOTHING_CHECKED_EXIT = 3


def read_sweep(args: argparse.Namespace, sweep: str | None) -> Any:
    """The sweep named on the command line (id, unique prefix, or None: the latest), read once."""
    from harness.analysis.load import SweepResults
    from harness.store.paths import find_sweep

    return SweepResults(find_sweep(args.results, sweep))


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from harness.analysis.board import leaderboard_view
    from harness.cli.render import print_rows, print_table, say

    board = leaderboard_view(read_sweep(args, args.sweep), args.sort, args.compare, args.population)
    if board.setting and board.paper:  # our setting beside the paper's, and Table 2's figures in brackets beside ours
        if args.format == "table":
            for view in (board.setting, board.paper):
                print_table(view.rows, view.columns, view.title, view.caption, view.compact, view.optional, args.wide)
            return 0
        say(board.paper.caption or "")
    table = board.table
    print_rows(args.format, table.rows, table.columns, table.title, table.caption, optional=table.optional, wide=args.wide)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.analysis.report import write_report

    print(write_report(read_sweep(args, args.sweep), args.format))  # the path alone: `xdg-open $(harness report)`
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from harness.analysis.predict import find_run, predict
    from harness.cli.render import print_rows

    run = find_run(args.results, args.run)
    predictions = predict(run, args.images)
    rows = [{"image": path, "p_fake": p, "verdict": "-" if p is None else ("fake" if p >= 0.5 else "real"), "reason": reason}
            for path, p, reason in predictions]
    shown = [{**row, "image": _from_here(path)} for row, (path, _, _) in zip(rows, predictions)]  # the rows keep it absolute
    name = f"{run.sweep.sweep_id}/{run.paths.run_id}"
    print_rows(args.format, rows, ["image", "p_fake", "verdict", "reason"], title=f"P(fake) by {name}", wide=args.wide,
               meta={"run": name} if args.meta else None, shown=shown, optional=("verdict",))
    return 0 if all(r["p_fake"] is not None for r in rows) else 1


def _from_here(path: str) -> str:
    """A path beneath the working folder as typed there ('face.png'), any other whole."""
    here, where = Path.cwd(), Path(path)
    return str(where.relative_to(here)) if where.is_relative_to(here) else path


def _print_problems(problems: list[str]) -> None:
    from harness.cli.render import say

    for problem in problems:
        say(problem, warning=True)


def cmd_history(args: argparse.Namespace) -> int:
    from harness.analysis.history import COLUMNS, history_rows, load_history, plot_history
    from harness.cli.render import print_rows

    points, problems = load_history(args.results, args.metric, args.model, args.partition)
    _print_problems(problems)
    rows = history_rows(points, args.metric)
    if args.format == "png":
        where = args.results / f"history-{args.metric}.png" if args.out is None else \
            args.out / f"history-{args.metric}.png" if args.out.is_dir() else args.out  # a folder: the figure in it
        what = " ".join(filter(None, [args.model, args.partition and f"partition {args.partition}"]))
        print(plot_history(points, args.metric, where, f"{args.metric} over time {what}".strip(), args.force))  # the path alone
        return 0
    columns = [*COLUMNS[:5], "seeds", args.metric, *COLUMNS[6:]]
    shown = [{**row, "change": "-" if row["change"] is None else f"x{row['change']:.3f}"} for row in rows]
    print_rows(args.format, rows, columns, shown=shown, wide=args.wide,
               optional=("commit", "driver", "cuda", "torch", "change", "settings", "seeds", "system"),
               title=f"{args.metric} ({rows[0]['unit']}) per sweep, one series per (model, system, settings)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.analysis.compare import compare_sweeps, shown
    from harness.cli.render import print_rows

    results_a, results_b = read_sweep(args, args.sweep_a), read_sweep(args, args.sweep_b)
    sweep_a, sweep_b = results_a.sweep, results_b.sweep
    rows = compare_sweeps(results_a, results_b)
    # a figure neither sweep measured (GPU figures on CPUs) says nothing in a table, unless it has a reason
    shown_rows = [{**row, "a": shown(row["unit"], row["a"]), "b": shown(row["unit"], row["b"]),
                   "ratio": "-" if row["ratio"] is None else f"{row['ratio']:.3f}",
                   "a_seeds": str(row["a_seeds"]), "b_seeds": str(row["b_seeds"])}
                  for row in rows if row["a"] is not None or row["b"] is not None or row["note"]]
    columns = ["model", "figure", "a", "a_seeds", "b", "b_seeds", "ratio", "beyond_spread", "test", "note"]
    print_rows(args.format, rows, columns, shown=shown_rows, meta={"a": sweep_a.sweep_id, "b": sweep_b.sweep_id} if args.meta else None,
               optional=("test", "a_seeds", "b_seeds", "note", "ratio"), wide=args.wide,
               title=f"B = {sweep_b.sweep_id} against A = {sweep_a.sweep_id} (means over seeds; beyond spread: Welch's t-test at "
               "5%, with one seed the timed windows' ranges)")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from harness.analysis.check import ANY_SYSTEM, NOT_COMPARABLE, check_sweep, read_references, update_references
    from harness.analysis.compare import shown
    from harness.cli.render import print_rows, say

    if args.all_systems and not args.update_references:
        raise UserError("--all-systems says where --update-references writes: it goes with --update-references")
    results = read_sweep(args, args.sweep)
    sweep = results.sweep
    if args.update_references:
        written, system, left_out = update_references(results, args.references, args.all_systems)
        where = "every system" if system == ANY_SYSTEM else f"system {system}"
        say(f"wrote {written} references from sweep {sweep.sweep_id} to {args.references}, for {where}")
        if left_out:
            say(f"not written: the speed figures of {', '.join(left_out)}, whose runs shared their node or GPU", warning=True)
        return 0
    rows = check_sweep(results, read_references(args.references))
    failed = [row for row in rows if row["verdict"] == "FAIL"]
    not_comparable = [row for row in rows if row["verdict"] == NOT_COMPARABLE]
    system = rows[0]["system"]
    shown_rows = [{**row, **{k: shown(row["unit"], row[k]) for k in ("value", "reference", "lower_bound", "upper_bound")},
                   "ratio": "-" if row["ratio"] is None else f"{row['ratio']:.3f}"} for row in rows]
    columns = ["model", "figure", "value", "reference", "lower_bound", "upper_bound", "ratio", "seeds", "verdict", "reason"]
    print_rows(args.format, rows, columns, shown=shown_rows, title=f"sweep {sweep.sweep_id} ({system}) against {args.references}",
               optional=("seeds", "ratio", "lower_bound", "upper_bound"), wide=args.wide,
               meta={"sweep": sweep.sweep_id, "system": system, "references": str(args.references), "failed": len(failed)}
               if args.meta else None)
    if not_comparable:
        say(f"{len(not_comparable)} figures not comparable, their runs shared their node or GPU: "
            + ", ".join(f"{r['model']} {r['figure']}" for r in not_comparable), warning=True)
    if not any(row["verdict"] in ("pass", "FAIL") for row in rows):
        say(f"no reference for this system ({system}) in {args.references}: nothing checked" if not not_comparable else
            "nothing checked: every figure with a reference for this system is not comparable")
        return NOTHING_CHECKED_EXIT
    if failed:
        say(f"{len(failed)} of {len(rows)} figures outside their reference: " + ", ".join(f"{r['model']} {r['figure']}" for r in failed))
    return 1 if failed else 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from harness.analysis.check import read_references
    from harness.analysis.dashboard import write_dashboard

    references = read_references(args.references) if args.references else None
    print(write_dashboard(args.results, args.out, references, args.force))  # the path alone
    return 0


def add_leaderboard(commands: Any) -> None:
    from harness.analysis.columns import POPULATIONS, SORTABLE

    board = commands.add_parser("leaderboard", help="rank a sweep's architectures, beside the paper's Table 2")
    add_sweep(board)
    add_format(board)
    board.add_argument("--sort", choices=SORTABLE, default="accuracy", metavar="METRIC",
                       help=f"what to rank by: {', '.join(SORTABLE)}")
    board.add_argument("--population", choices=POPULATIONS, default=POPULATIONS[0],
                       help="what the accuracy's interval is about: new-test-set, new seeds and new test photographs, "
                       "identities or images drawn as these were (the default); this-test-set, new seeds on this test "
                       "set (conditional on it)")
    board.add_argument("--compare", choices=["paper", "dle"],
                       help="paper: the paper's Table 2 beside ours; dle: NVIDIA's published speedups beside a scaling "
                       "sweep's (where the GPU and the precision match)")
    board.set_defaults(func=cmd_leaderboard)


def add_commands(commands: Any) -> None:
    add_leaderboard(commands)

    report = commands.add_parser("report", help="one self-contained report of a sweep: tables, figures, settings")
    add_sweep(report)
    report.add_argument("--format", choices=["html", "markdown"], default="html",
                        help="html: one self-contained page, figures inside; markdown: report.md beside the figures' PNGs")
    report.set_defaults(func=cmd_report)

    predict = commands.add_parser("predict", help="the probability that each image is fake, by a trained run")
    predict.add_argument("--run", required=True, help="SWEEP/ARCH (its first completed seed) or SWEEP/RUN-ID")
    predict.add_argument("images", nargs="+", type=user_path)
    add_format(predict, meta=True)
    add_results(predict)
    predict.set_defaults(func=cmd_predict)
    _add_across_sweeps(commands)


def _add_across_sweeps(commands: Any) -> None:
    """history, compare, dashboard and check: what reads more than one sweep, or the perflog."""
    from harness.store.figures import FIGURES

    history = commands.add_parser("history", help="a figure over time from results/perflog.jsonl, per system and settings")
    history.add_argument("--model", help="one architecture (as the sweep named it)")
    history.add_argument("--partition", help="one partition ('local' for runs on this machine)")
    history.add_argument("--metric", choices=list(FIGURES), default="train_images_per_s", metavar="METRIC",
                         help=f"the figure to follow (default train_images_per_s): {', '.join(FIGURES)}")
    add_format(history, "png", more_help="png: the figure (see --out)")
    history.add_argument("--out", type=user_path, help="with --format png: the figure's path, or a folder to put history-METRIC.png in "
                         "(default RESULTS/history-METRIC.png)")
    add_force(history, "the figure")
    add_results(history)
    history.set_defaults(func=cmd_history)

    compare = commands.add_parser("compare", help="two sweeps side by side per architecture: ratios, spread, GPU-hours")
    compare.add_argument("sweep_a", metavar="SWEEP_A", help="the baseline (sweep id or unique prefix)")
    compare.add_argument("sweep_b", metavar="SWEEP_B", help="the sweep compared with it")
    add_format(compare, meta=True)
    add_results(compare)
    compare.set_defaults(func=cmd_compare)

    dashboard = commands.add_parser("dashboard", help="one HTML page over the results folder's whole perflog: trends per "
                                    "system, quality against cost, the latest leaderboard and check")
    dashboard.add_argument("--out", type=user_path, required=True, help="the page to write (FILE.html)")
    dashboard.add_argument("--references", type=user_path, help="references (TOML): their bands, and the latest sweep checked")
    add_force(dashboard, "the page")
    add_results(dashboard)
    dashboard.set_defaults(func=cmd_dashboard)

    check = commands.add_parser("check", help="every figure of a sweep against its system's reference; exit 1 when one is outside, "
                                "3 when the references hold none for the sweep's system")
    add_sweep(check)
    check.add_argument("--references", type=user_path, required=True,
                       help="TOML file of references with tolerances (see docs/site.md, 'A benchmark across sweeps')")
    check.add_argument("--update-references", action="store_true",
                       help="write the sweep's figures into --references as the new values instead of checking, under the "
                       "sweep's own system (CLUSTER:PARTITION:GPU)")
    check.add_argument("--all-systems", action="store_true",
                       help="with --update-references: write them as the references of every system (the file's top level)")
    add_format(check, meta=True)
    check.set_defaults(func=cmd_check)
