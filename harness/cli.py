"""The command line: parse, call one use case, render. Bad input ends in one line and exit code 2.

Imports nothing heavy at module level: each command imports what it needs, so `status` and `--help`
start without torch, timm or submitit.
"""
import argparse
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

from harness.data import DEMO
from harness.errors import UserError

CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def user_path(text: str) -> Path:
    """A path as typed, made absolute here, once: sweeps, jobs and workers run in other folders."""
    return Path(os.path.abspath(os.path.expanduser(text)))


def dataset_path(text: str) -> str:
    """--dataset: 'demo', or a folder made absolute (user_path)."""
    return text if text == "demo" else str(user_path(text))


def profile_name_or_path(text: str) -> str:
    """--profile: a packaged profile's name, or a file (it has a suffix, as load_profile reads it) made absolute."""
    return str(user_path(text)) if Path(text).suffix else text


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text) if text.lstrip("-").isdigit() else None
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


# --- models ---
def cmd_models(args: argparse.Namespace) -> int:
    from harness.render import as_json, out, print_table
    from harness.zoo.models import describe_models

    if args.all is not None:
        return cmd_models_all(args)
    rows = describe_models()
    if args.format == "json":
        print(as_json(rows))
        return 0
    print_table(rows, ["model", "timm_weights", "params", "paper_params", "delta", "input_size", "interpolation", "keras_mode"],
                title="The paper's eight architectures (parameters counted as Keras counts them)")
    for row in rows:
        if row["note"]:
            out.print(f"[bold]{row['model']}[/bold] {row['delta']:+,}: {row['note']}")
    return 0


# --- data ---
def cmd_data_prepare(args: argparse.Namespace) -> int:
    from harness.data.prepare import prepare_dataset
    from harness.render import err, out, print_table

    report = prepare_dataset(args.real, args.fake, args.out, args.per_class, args.seed, args.reencode)
    share = {"label": "fake share", **{split: f"{value:.1%}" for split, value in report.fake_share.items()}}
    print_table([*({"label": label, **counts} for label, counts in report.counts.items()), share],
                ["label", "train", "val", "test"], title=f"{report.manifest}")
    if report.skipped:
        err.print(f"skipped {len(report.skipped)} files that do not decode:")
        for path, reason in report.skipped:
            err.print(f"  {path}: {reason}", markup=False)
    if report.duplicates_dropped:
        out.print(f"dropped {report.duplicates_dropped} duplicates: {report.duplicates_bytes} byte-identical, "
                  f"{report.duplicates_pixels} pixel-identical (the same decoded image in other bytes)")
    for digest in report.in_both_classes:
        err.print(f"[yellow]warning:[/yellow] an image (sha256 {digest[:16]}...) is both real and fake; dropped from both")
    for warning in report.warnings:  # codec, size and class balance
        err.print(f"[yellow]warning:[/yellow] {warning}")
    for note in report.notes:
        err.print(note, markup=False)
    return 0


def cmd_data_demo(args: argparse.Namespace) -> int:
    import csv
    from collections import Counter

    from harness.data.demo import make_demo
    from harness.render import print_table

    generators = tuple(g.strip() for g in args.generators.split(",") if g.strip())
    path = make_demo(args.out, args.per_class, args.size, args.seed, generators)
    with open(path, newline="") as handle:
        counts = Counter((r["label"] if r["label"] == "real" else f"fake: {r['generator']}", r["split"]) for r in csv.DictReader(handle))
    kinds = sorted({kind for kind, _ in counts})
    print_table([{"kind": k, **{s: counts[(k, s)] for s in ("train", "val", "test")}} for k in kinds],
                ["kind", "train", "val", "test"], title=str(path))
    return 0


# --- sweep ---
def _profile(args: argparse.Namespace, base: Any) -> Any:
    """The profile with the options given on the command line in place of its values."""
    from harness.cluster.sbatch import check_slurm_name, format_gres, parse_gres, parse_sbatch_extra

    gres = args.gres
    if args.gpu_type is not None:  # refused as --gpu-type, not as the --gres it becomes
        check_slurm_name("--gpu-type", args.gpu_type)
    if args.gpu_type or args.gpus_per_run:  # shorthands for parts of --gres
        gpu_type, count = parse_gres(gres or base.gres or "gpu:1")
        gres = format_gres(args.gpu_type or gpu_type, args.gpus_per_run or count)
    extra = dict(base.sbatch) | parse_sbatch_extra(args.sbatch) if args.sbatch else None
    return base.override(cpu_partition=args.cpu_partition, gpu_partition=args.partition, gres=gres, time=args.time,
                         mem=args.mem, cpus_per_task=args.cpus_per_task, account=args.account, qos=args.qos,
                         array_parallelism=args.array_parallelism, constraint=args.constraint, exclude=args.exclude,
                         reservation=args.reservation, sbatch=extra)


def cmd_sweep(args: argparse.Namespace) -> int:
    from harness import sweeps
    from harness.cluster import get_backend
    from harness.cluster.profiles import Profile, load_profile
    from harness.cluster.slurm import slurm_answers
    from harness.render import err
    from harness.store.paths import find_sweep
    from harness.store.records import read_spec
    from harness.training.config import train_options

    # naming a partition means Slurm; otherwise Slurm when one answers (or, resuming, where the sweep ran)
    asks_for_slurm = args.partition or args.cpu_partition or args.profile
    cluster = args.cluster if args.cluster != "auto" else "slurm" if asks_for_slurm else None
    if args.force and not args.resume:
        raise UserError("--force resubmits the live runs of a sweep: it goes with --resume SWEEP")
    if args.resume:
        # a resumed sweep keeps the options it was planned with: one given anew would be silently ignored
        given = [name for name, default in args.new_sweep_defaults.items() if getattr(args, name) != default]
        if given:
            raise UserError(f"--{given[0].replace('_', '-')} cannot change a sweep being resumed (--resume keeps "
                            "its runs and training options; only cluster options such as --time apply): start a new sweep")
        sweeps.check_results_path(args.results)
        sweep = find_sweep(args.results, args.resume)
        spec = read_spec(sweep)
        stored_cluster, stored_profile = sweeps.resume_settings(spec, sweep)
        cluster = cluster or stored_cluster
        profile = _profile(args, load_profile(args.profile) if args.profile else stored_profile)
        sweeps.check_resumable(sweep)
        run_ids, alive = sweeps.runs_to_resume(sweep, force=args.force)
        for status in alive:
            err.print(f"{status.run_id} is {status.state} (job {status.job_id}): not resubmitted (--force to)", markup=False)
        if not run_ids:
            err.print(f"sweep {spec.sweep_id}: no run to resubmit")
            print(spec.sweep_id, flush=True)
            return follow(sweep) if args.wait else 0
    else:
        profile = _profile(args, load_profile(args.profile) if args.profile else Profile())
        cluster = cluster or ("slurm" if slurm_answers() is None else "local")
        train = train_options(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, warmup_epochs=args.warmup_epochs,
                              optimizer=args.optimizer,
                              mode=args.mode, weights=args.weights, image_size=args.image_size, preprocessing=args.preprocessing,
                              select_by=args.select_by, precision=args.precision, tf32=args.tf32, channels_last=args.channels_last,
                              device=args.device, compile=args.compile or None, allow_random_backbone=args.allow_random_backbone,
                              resplit=args.resplit or None)
        request = sweeps.SweepRequest(dataset=args.dataset, models=sweeps.parse_models(args.models), seeds=args.seeds,
                                      train=train, results=args.results, name=args.name,
                                      cross_generator=args.cross_generator, ablate_preprocessing=args.ablate_preprocessing)
    backend = get_backend(cluster, max_parallel=args.max_parallel)
    profile = backend.resolve(profile)  # the site's settings where the profile and the options set none
    if not args.resume:
        sweep, spec = sweeps.plan(request, {"executor": cluster, **profile.to_json()})
        run_ids = [r.run_id for r in spec.runs]
    if args.dry_run:
        for script in backend.scripts(sweep, profile, run_ids):
            print(script)
        return 0
    if args.check:
        answers = backend.check(sweep, profile, run_ids)
        for answer in answers:
            print(answer)
        return 0 if all(a.startswith("ok") for a in answers) else 1
    if args.resume:
        backend.preflight(profile, len(run_ids))
        sweeps.set_aside_records(sweep, run_ids)
        submission = sweeps.submit(sweep, backend, profile, run_ids)
    else:
        submission = sweeps.start(sweep, spec, backend, profile)
    err.print(f"sweep {spec.sweep_id}: {len(run_ids)} runs on {cluster} ({sweep.folder})")
    if submission.preprocess_job:
        err.print(f"preprocessing job {submission.preprocess_job}; training job ids: {', '.join(sorted(set(submission.tasks.values())))}")
    print(spec.sweep_id, flush=True)
    return follow(sweep) if args.wait else 0


# --- status ---
STATUS_COLUMNS = ["run_id", "state", "job_id", "partition", "node", "elapsed", "epoch", "val_accuracy", "requeues", "reason"]


def _status_table(sweep_id: str, statuses: list, pre: dict[str, Any]) -> Any:
    from harness.render import table

    done = f", {pre['done']}/{pre['total']} images at {pre['images_per_s']:.0f}/s" if "done" in pre else ""
    done += f" ({pre['reason']})" if pre.get("reason") else ""
    rows, columns = [], STATUS_COLUMNS + (["energy_j"] if any(s.energy_j for s in statuses) else [])
    for status in statuses:
        row = status.as_dict()
        if row["epoch"] is not None and row["epochs"]:
            row["epoch"] = f"{row['epoch']}/{row['epochs']}"
        rows.append(row)
    return table(rows, columns, title=f"sweep {sweep_id}; preprocessing: {pre.get('state')}{done}")


def follow(sweep: Any) -> int:
    """Show the sweep's status until every run is final; exit 0 only when all completed. On a terminal
    a live table; otherwise one plain line per change."""
    from rich.live import Live

    from harness import sweeps
    from harness.render import err, out

    statuses: list = []
    if out.is_terminal:
        with Live(console=out, refresh_per_second=1, transient=True) as live:
            for statuses, pre in sweeps.follow(sweep):
                live.update(_status_table(sweep.sweep_id, statuses, pre))
        out.print(_status_table(sweep.sweep_id, statuses, pre))
    else:
        last = ""
        for statuses, pre in sweeps.follow(sweep):
            line = "; ".join(f"{s.run_id} {s.state}" + (f" {s.epoch}/{s.epochs}" if s.epoch else "") for s in statuses)
            if line != last:
                why = f" ({pre['reason']})" if pre.get("reason") else ""
                err.print(f"{sweep.sweep_id}: preprocessing {pre.get('state')}{why}; {line}", markup=False, highlight=False)
                last = line
    failed = [s.run_id for s in statuses if s.state != "COMPLETED"]
    if failed:
        err.print(f"{len(failed)} runs did not complete: {', '.join(failed)}", markup=False)
    return 1 if failed else 0


def cmd_status(args: argparse.Namespace) -> int:
    from harness.analysis.status import sweep_status
    from harness.render import as_json, out
    from harness.store.paths import find_sweep

    sweep = find_sweep(args.results, args.sweep)
    if args.watch:
        return follow(sweep)
    statuses, pre = sweep_status(sweep)
    if args.format == "json":
        print(as_json({"sweep_id": sweep.sweep_id, "preprocess": pre, "runs": [s.as_dict() for s in statuses]}))
    else:
        out.print(_status_table(sweep.sweep_id, statuses, pre))
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from harness import sweeps
    from harness.render import err
    from harness.store.paths import find_sweep

    sweep = find_sweep(args.results, args.sweep)
    runs = [r.strip() for r in args.runs.split(",") if r.strip()] if args.runs else None
    cancelled = sweeps.cancel(sweep, runs)
    err.print(f"sweep {sweep.sweep_id}: cancelled {len(cancelled)} runs" + (f" ({', '.join(cancelled)})" if cancelled else ""),
              markup=False)
    return 0


def cmd_cluster(args: argparse.Namespace) -> int:
    from harness.cluster.site import derive_settings, read_site, settings_as_toml, settings_table
    from harness.cluster.slurm import slurm_answers
    from harness.render import err, print_table

    reason = slurm_answers()
    if reason:
        raise UserError(f"no Slurm answers here ({reason}); run this on a login node of the cluster")
    site = read_site()
    settings = derive_settings(site, args.partition, args.cpu_partition)
    if args.format == "toml":
        print(settings_as_toml(settings), end="")
        return 0
    partitions = [{"partition": p.name + (" (default)" if p.is_default else ""), "state": p.state, "nodes": len(p.nodes),
                   "cpus/node": p.cpus_per_node, "mem MB/node": p.mem_mb_per_node, "gpus/node": p.gpus_per_node,
                   "gpu types": ", ".join(sorted(p.gpu_types)) or "-", "max time": "-" if p.max_time_min is None else p.max_time_min,
                   "default time": "-" if p.default_time_min is None else p.default_time_min} for p in site.partitions.values()]
    print_table(partitions, list(partitions[0]) if partitions else [], title=f"Slurm cluster {site.cluster_name} "
                f"(MaxArraySize {site.max_array_size}; times in minutes)")
    print_table([{"setting": k, "value": v, "source": why} for k, v, why in settings_table(settings)],
                ["setting", "value", "source"], title="What a sweep would ask for (keep with --format toml > site.toml)")
    err.print("override any of them with sweep's options or a profile (--profile site.toml)", markup=False)
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from harness import sweeps
    from harness.store.paths import find_sweep

    sweep_ref, _, run = args.run.rpartition("/")
    if not sweep_ref or not run:
        raise UserError(f"logs takes SWEEP/RUN (a run id or an architecture), not {args.run!r}")
    sweep = find_sweep(args.results, sweep_ref)
    path = sweeps.log_path(sweep, run, "err" if args.err else "out")
    for chunk in sweeps.read_log(sweep, path, follow=args.follow):
        sys.stdout.write(chunk)
        sys.stdout.flush()
    return 0


# --- leaderboard, report, predict ---
def cmd_leaderboard(args: argparse.Namespace) -> int:
    from harness.analysis.leaderboard import COLUMNS, leaderboard, with_paper
    from harness.render import as_csv, as_json, as_markdown, interval, print_table
    from harness.store.paths import find_sweep

    sweep = find_sweep(args.results, args.sweep)
    rows = leaderboard(sweep, args.sort)
    columns = list(COLUMNS)
    if any(r.get("accuracy_lo") is not None for r in rows):  # several seeds: each accuracy's 95% interval
        for row in rows:
            row["acc 95% CI (seeds)"] = interval(row.get("accuracy_lo"), row.get("accuracy_hi"))
        columns.insert(columns.index("accuracy") + 1, "acc 95% CI (seeds)")
    if any(r.get("not_separable_from") is not None for r in rows):
        columns.insert(columns.index("status"), "not_separable_from")
    if args.compare == "paper":  # our setting beside the paper's, and Table 2's figures in brackets beside ours
        from harness.analysis.comparison import SETTING_COLUMNS, VIEW_TITLE, paper_view, setting_line, setting_rows
        from harness.render import err
        from harness.store.records import read_spec

        setting = setting_rows(read_spec(sweep))
        if args.format == "table":
            print_table(setting, SETTING_COLUMNS, title=f"sweep {sweep.sweep_id}: its setting beside the paper's")
            view, view_columns = paper_view(rows)
            print_table(view, view_columns, title=VIEW_TITLE, caption=setting_line(setting), compact=True)
            return 0
        err.print(setting_line(setting), markup=False, highlight=False)
        rows = with_paper(rows)
        columns += ["paper_params", "paper_accuracy", "paper_loss", "paper_precision", "paper_recall", "paper_f1"]
    if args.format == "json":
        print(as_json(rows))
    elif args.format == "csv":
        print(as_csv(rows), end="")
    elif args.format == "markdown":
        print(as_markdown(rows, columns), end="")
    else:
        covers = {r["interval_covers"] for r in rows if r.get("interval_covers")}
        print_table(rows, columns, title=f"leaderboard of sweep {sweep.sweep_id} (mean over seeds"
                    + (f"; intervals over {', '.join(sorted(covers))})" if covers else ")"))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.analysis.report import write_report
    from harness.render import out
    from harness.store.paths import find_sweep

    path = write_report(find_sweep(args.results, args.sweep), args.format)
    out.print(f"report: {path}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from harness.analysis.predict import find_run, predict
    from harness.render import as_json, print_table

    run = find_run(args.results, args.run)
    rows = [{"image": path, "p_fake": p, "verdict": "-" if p is None else ("fake" if p >= 0.5 else "real"), "reason": reason}
            for path, p, reason in predict(run, args.images)]
    name = f"{run.sweep.sweep_id}/{run.paths.run_id}"
    if args.format == "json":
        print(as_json({"run": name, "predictions": rows}))
    else:
        print_table(rows, ["image", "p_fake", "verdict", "reason"], title=f"P(fake) by {name}")
    return 0 if all(r["p_fake"] is not None for r in rows) else 1


# --- a benchmark across sweeps (issue 14): models --all, history, compare, check ---
def cmd_models_all(args: argparse.Namespace) -> int:
    from harness.render import as_json, print_table
    from harness.zoo.models import list_timm_models

    rows = list_timm_models(args.all)
    if not rows:
        raise UserError(f"timm has no model matching {args.all!r} (a pattern such as 'convnext*' or '*vit_small*')")
    if args.format == "json":
        print(as_json(rows))
    else:
        print_table(rows, ["model", "pretrained", "default_tag", "tags", "input_size", "fixed_input_size", "paper"],
                    title=f"timm models matching {args.all!r}: any of them goes to sweep --models")
    return 0


def _print_problems(problems: list[str]) -> None:
    from harness.render import err

    for problem in problems:
        err.print(f"[yellow]warning:[/yellow] {problem}", highlight=False)


def cmd_history(args: argparse.Namespace) -> int:
    from harness.analysis.history import COLUMNS, history_rows, load_history, plot_history
    from harness.render import as_csv, as_json, out, print_table

    points, problems = load_history(args.results, args.metric, args.model, args.partition)
    _print_problems(problems)
    rows = history_rows(points, args.metric)
    if args.format == "png":
        where = args.out or args.results / f"history-{args.metric}.png"
        what = " ".join(filter(None, [args.model, args.partition and f"partition {args.partition}"]))
        out.print(f"figure: {plot_history(points, args.metric, where, f'{args.metric} over time {what}'.strip())}")
    elif args.format == "json":
        print(as_json(rows))
    elif args.format == "csv":
        print(as_csv(rows), end="")
    else:
        columns = [*COLUMNS[:5], "seeds", args.metric, *COLUMNS[6:]]
        for row in rows:
            row["change"] = "-" if row["change"] is None else f"x{row['change']:.3f}"
        print_table(rows, columns, title=f"{args.metric} ({rows[0]['unit']}) per sweep, one series per (model, system, settings)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.analysis.compare import compare_sweeps, shown
    from harness.render import as_csv, as_json, as_markdown, print_table
    from harness.store.paths import find_sweep

    sweep_a, sweep_b = find_sweep(args.results, args.sweep_a), find_sweep(args.results, args.sweep_b)
    rows, notes = compare_sweeps(sweep_a, sweep_b)
    _print_problems(notes)
    if args.format == "json":
        print(as_json({"a": sweep_a.sweep_id, "b": sweep_b.sweep_id, "rows": rows}))
        return 0
    if args.format == "csv":
        print(as_csv(rows), end="")
        return 0
    # a figure neither sweep measured (GPU figures on CPUs) says nothing in a table, unless it has a reason
    shown_rows = [{**row, "a": shown(row["unit"], row["a"]), "b": shown(row["unit"], row["b"]),
                   "ratio": "-" if row["ratio"] is None else f"{row['ratio']:.3f}",
                   "a_seeds": str(row["a_seeds"]), "b_seeds": str(row["b_seeds"])}
                  for row in rows if row["a"] is not None or row["b"] is not None or row["note"]]
    columns = ["model", "figure", "a", "a_seeds", "b", "b_seeds", "ratio", "beyond_spread", "test", "note"]
    if args.format == "markdown":
        print(as_markdown(shown_rows, columns), end="")
    else:
        print_table(shown_rows, columns, title=f"B = {sweep_b.sweep_id} against A = {sweep_a.sweep_id} "
                    "(means over seeds; beyond_spread: Welch's t-test at 5%)")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from harness.analysis.check import check_sweep, read_references, update_references
    from harness.analysis.compare import shown
    from harness.render import as_csv, as_json, err, print_table
    from harness.store.paths import find_sweep

    sweep = find_sweep(args.results, args.sweep)
    if args.update_references:
        references = update_references(sweep, args.references)
        err.print(f"wrote {len(references.references)} references from sweep {sweep.sweep_id} to {args.references}",
                  markup=False, highlight=False)
        return 0
    rows = check_sweep(sweep, read_references(args.references))
    failed = [row for row in rows if row["verdict"] == "FAIL"]
    if args.format == "json":
        print(as_json({"sweep": sweep.sweep_id, "references": str(args.references), "failed": len(failed), "rows": rows}))
    elif args.format == "csv":
        print(as_csv(rows), end="")
    else:
        shown_rows = [{**row, **{k: shown(row["unit"], row[k]) for k in ("value", "reference", "lower_bound", "upper_bound")},
                       "ratio": "-" if row["ratio"] is None else f"{row['ratio']:.3f}"} for row in rows]
        print_table(shown_rows, ["model", "figure", "value", "reference", "lower_bound", "upper_bound", "ratio", "seeds",
                                 "verdict", "reason"], title=f"sweep {sweep.sweep_id} against {args.references}")
    if failed:
        err.print(f"{len(failed)} of {len(rows)} figures outside their reference: "
                  + ", ".join(f"{r['model']} {r['figure']}" for r in failed), markup=False, highlight=False)
    return 1 if failed else 0


def add_perf_commands(sub: Any) -> None:
    """The subcommands of a benchmark across sweeps (README: "A benchmark across sweeps")."""
    from harness.store.perflog import FIGURE_UNITS

    history = sub.add_parser("history", help="a figure over time from results/perflog.jsonl, per system and settings")
    history.add_argument("--model", help="one architecture (as the sweep named it)")
    history.add_argument("--partition", help="one partition ('local' for runs outside Slurm)")
    history.add_argument("--metric", choices=list(FIGURE_UNITS), default="train_images_per_s", metavar="METRIC",
                         help=f"the figure to follow (default train_images_per_s): {', '.join(FIGURE_UNITS)}")
    history.add_argument("--format", choices=["table", "csv", "json", "png"], default="table")
    history.add_argument("--out", type=user_path, help="with --format png: the figure's path (default RESULTS/history-METRIC.png)")
    history.add_argument("--results", type=user_path, default="results")
    history.set_defaults(func=cmd_history)

    compare = sub.add_parser("compare", help="two sweeps side by side per architecture: ratios, spread, GPU-hours")
    compare.add_argument("sweep_a", metavar="SWEEP_A", help="the baseline (sweep id or unique prefix)")
    compare.add_argument("sweep_b", metavar="SWEEP_B", help="the sweep compared with it")
    compare.add_argument("--format", choices=["table", "csv", "markdown", "json"], default="table")
    compare.add_argument("--results", type=user_path, default="results")
    compare.set_defaults(func=cmd_compare)

    check = sub.add_parser("check", help="every figure of a sweep against its reference; exit 1 when one is outside")
    _sweep_argument(check)
    check.add_argument("--references", type=user_path, required=True,
                       help="TOML file of references with tolerances (examples in slurm/references/)")
    check.add_argument("--update-references", action="store_true",
                       help="write the sweep's figures into --references as the new values instead of checking")
    check.add_argument("--format", choices=["table", "csv", "json"], default="table")
    check.set_defaults(func=cmd_check)


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (what is wrong and where), not a usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {self.prog.removeprefix('python -m ')}: {message} (see --help)\n")


def _sweep_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep", nargs="?", help="sweep id or unique prefix (default: the latest)")
    parser.add_argument("--results", type=user_path, default="results")


def build_parser() -> argparse.ArgumentParser:
    from harness.cluster.local import default_parallelism
    from harness.training.config import MODES, OPTIMIZERS, PRECISIONS, SELECT_BY, TrainConfig
    from harness.zoo import WEIGHTS_HELP
    from harness.zoo.preprocessing import PREPROCESSING_CHOICES

    defaults = TrainConfig(model="")
    parser = Parser(prog="python -m harness", description="Benchmark deep-fake face detectors on Slurm.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    models = sub.add_parser("models", help="the paper's eight architectures, their parameter counts and preprocessing")
    models.add_argument("--format", choices=["table", "json"], default="table")
    models.add_argument("--all", nargs="?", const="*", metavar="PATTERN",
                        help="list timm's models matching PATTERN (e.g. 'convnext*'; default: all), any of which --models takes")
    models.set_defaults(func=cmd_models)

    data = sub.add_parser("data", help="datasets: prepare your own, or build the demo").add_subparsers(
        dest="data_command", required=True, parser_class=Parser)
    prepare = data.add_parser("prepare", help="check, deduplicate and split a real and a fake folder into manifest.csv")
    prepare.add_argument("--real", type=user_path, required=True, help="folder of real images (any depth)")
    prepare.add_argument("--fake", type=user_path, required=True, action="append",
                         help="folder of fake images (any depth); repeat it, one folder per generator")
    prepare.add_argument("--out", type=user_path, required=True, help="folder for manifest.csv (and re-encoded images)")
    prepare.add_argument("--per-class", type=positive_int, help="sample this many images per class (the paper: 5000)")
    prepare.add_argument("--seed", type=non_negative_int, default=0)
    prepare.add_argument("--reencode", metavar="png|jpeg:Q", help="pass both classes through the same codec")
    prepare.set_defaults(func=cmd_data_prepare)
    demo = data.add_parser("demo", help="build the built-in demo dataset (no download)")
    demo.add_argument("--out", type=user_path, required=True)
    demo.add_argument("--per-class", type=positive_int, default=DEMO["per_class"])
    demo.add_argument("--size", type=positive_int, default=DEMO["size"], help="image side in pixels")
    demo.add_argument("--seed", type=non_negative_int, default=DEMO["seed"])
    demo.add_argument("--generators", default="upsampler",
                      help="kinds of fake, comma-separated: upsampler (GAN-style upsamplers), bilinear_conv, dcgan")
    demo.set_defaults(func=cmd_data_demo)

    sweep = sub.add_parser("sweep", help="train and evaluate every (architecture, seed) as a job; prints the sweep id")
    sweep.add_argument("--dataset", type=dataset_path, default="demo", help="a folder with manifest.csv (from data prepare), or 'demo'")
    sweep.add_argument("--models", help="comma-separated architectures: the paper's names or any timm model name (default: the eight)")
    sweep.add_argument("--seeds", type=positive_int, default=1, help="runs per architecture")
    sweep.add_argument("--resplit", action="store_true",
                       help="each seed also draws its own train/val/test split (by source group): intervals then cover the split")
    sweep.add_argument("--epochs", type=positive_int, default=defaults.epochs)
    sweep.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    sweep.add_argument("--lr", type=positive_float,
                       help=f"learning rate for every architecture (default: each one's own, see the zoo; else {defaults.lr:g})")
    sweep.add_argument("--warmup-epochs", type=non_negative_int,
                       help="raise the lr linearly over the first N epochs (default: each architecture's own, else 0)")
    sweep.add_argument("--optimizer", choices=OPTIMIZERS, default=defaults.optimizer)
    sweep.add_argument("--mode", choices=MODES, default=defaults.mode, help="transfer: frozen backbone (the paper); finetune: all layers")
    sweep.add_argument("--weights", default=defaults.weights, help=WEIGHTS_HELP)
    sweep.add_argument("--image-size", type=positive_int,
                       help="input side in pixels (default: each architecture's own; on the demo 35, or the architecture's minimum)")
    sweep.add_argument("--preprocessing", choices=PREPROCESSING_CHOICES, default=defaults.preprocessing,
                       help="timm: each model's own config; paper: each model's Keras mode (caffe for ResNet50/VGG, "
                       "torch for DenseNet121, tf for the others); caffe/torch/tf: one Keras mode for every model")
    sweep.add_argument("--select-by", choices=SELECT_BY, default=defaults.select_by,
                       help="the epoch each run keeps and tests: highest val accuracy (ties: lowest loss), or lowest val loss")
    sweep.add_argument("--precision", choices=PRECISIONS, default=defaults.precision)
    sweep.add_argument("--channels-last", action="store_true")
    sweep.add_argument("--tf32", action="store_true", help="fp32 on TF32 tensor cores (default: IEEE fp32, as MFU assumes)")
    sweep.add_argument("--compile", action="store_true",
                       help="run the training step through torch.compile (compile time recorded apart; eager if it fails)")
    sweep.add_argument("--device", default=defaults.device, help="auto, cpu, cuda or cuda:N")
    sweep.add_argument("--cross-generator", action="store_true",
                       help="per architecture, one run per fake generator of the dataset, each tested on every generator")
    sweep.add_argument("--ablate-preprocessing", action="store_true",
                       help="per architecture: its own preprocessing (timm), its Keras mode (paper) and caffe's for all "
                       "(the paper's likely input); variants that feed the same input run once")
    sweep.add_argument("--allow-random-backbone", action="store_true",
                       help="accept --mode transfer --weights none (a frozen random backbone; refused otherwise)")
    sweep.add_argument("--cluster", choices=["auto", "slurm", "local"], default="auto",
                       help="auto: Slurm when --partition is given or a Slurm controller answers, else this machine")
    sweep.add_argument("--results", type=user_path, default="results", help="where sweeps are written")
    sweep.add_argument("--name", help="the sweep id (default: a timestamp)")
    sweep.add_argument("--wait", action="store_true", help="follow the sweep until every run ends")
    sweep.add_argument("--resume", metavar="SWEEP",
                       help="resubmit the runs of SWEEP that have no result, with the cluster settings it was submitted with")
    sweep.add_argument("--force", action="store_true", help="with --resume: resubmit runs whose job is still queued or running")
    sweep.add_argument("--dry-run", action="store_true", help="print the batch scripts instead of submitting")
    sweep.add_argument("--check", action="store_true",
                       help="ask Slurm whether and when the jobs would start (sbatch --test-only), without submitting")
    sweep.add_argument("--max-parallel", type=positive_int, help=f"local runs at a time (default here: {default_parallelism()})")
    slurm = sweep.add_argument_group("Slurm (defaults read from the site: see `harness cluster`; a profile overrides them)")
    slurm.add_argument("--profile", type=profile_name_or_path,
                       help="a packaged profile name (local, marwan) or a .toml path (default: none; "
                       "with --resume, the sweep's own settings)")
    slurm.add_argument("--partition", help="GPU partition of the training tasks")
    slurm.add_argument("--cpu-partition", help="CPU partition of the preprocessing job")
    slurm.add_argument("--gres", help="a training task's GRES: gpu:N or gpu:TYPE:N")
    slurm.add_argument("--gpu-type", help="GPU type in --gres=gpu:TYPE:N")
    slurm.add_argument("--gpus-per-run", type=positive_int, help="GPUs per training task (N in --gres)")
    slurm.add_argument("--time", help="time limit of a training task, as sbatch reads it: MIN, HH:MM:SS, D-HH:MM, ...")
    slurm.add_argument("--mem", help="memory of a training task, as sbatch reads it: 8000 (MB), 16G, ...")
    slurm.add_argument("--cpus-per-task", type=positive_int)
    slurm.add_argument("--array-parallelism", type=positive_int, help="training tasks running at once")
    slurm.add_argument("--account")
    slurm.add_argument("--qos")
    slurm.add_argument("--constraint", help="node features, as sbatch --constraint")
    slurm.add_argument("--exclude", help="nodes to avoid, as sbatch --exclude")
    slurm.add_argument("--reservation")
    slurm.add_argument("--sbatch", action="append", default=[], metavar="KEY=VALUE",
                       help="any other sbatch option (repeatable), e.g. --sbatch mail-type=END")
    # the options that plan a new sweep, which --resume cannot change (see cmd_sweep)
    new_sweep = ["dataset", "models", "seeds", "epochs", "batch_size", "lr", "warmup_epochs", "optimizer", "mode", "weights",
                 "image_size", "preprocessing", "select_by", "precision", "channels_last", "tf32", "compile", "device",
                 "cross_generator", "ablate_preprocessing", "allow_random_backbone", "name"]
    sweep.set_defaults(func=cmd_sweep, new_sweep_defaults={name: sweep.get_default(name) for name in new_sweep})

    status = sub.add_parser("status", help="where every job of a sweep stands")
    _sweep_argument(status)
    status.add_argument("--format", choices=["table", "json"], default="table")
    status.add_argument("--watch", action="store_true",
                        help="follow until every run is final (exit 0 when all completed); plain lines when not on a terminal")
    status.set_defaults(func=cmd_status)

    cancel = sub.add_parser("cancel", help="cancel a sweep's jobs (queued or running)")
    _sweep_argument(cancel)
    cancel.add_argument("--runs", help="comma-separated run ids or architectures (default: every job of the sweep)")
    cancel.set_defaults(func=cmd_cancel)

    cluster = sub.add_parser("cluster", help="what this Slurm site offers, and the settings a sweep would use")
    cluster.add_argument("--partition", help="GPU partition (default: the only one with GPUs)")
    cluster.add_argument("--cpu-partition", help="CPU partition (default: the default partition, or the most CPU-only nodes)")
    cluster.add_argument("--format", choices=["table", "toml"], default="table", help="toml: a ready profile to edit and keep")
    cluster.set_defaults(func=cmd_cluster)

    logs = sub.add_parser("logs", help="a run's job log (stdout, or --err), for its latest attempt")
    logs.add_argument("run", metavar="SWEEP/RUN", help="a sweep id (or prefix) and a run id or architecture")
    logs.add_argument("--err", action="store_true", help="the job's stderr instead of its stdout")
    logs.add_argument("--follow", action="store_true", help="keep printing as the log grows, until the job ends")
    logs.add_argument("--results", type=user_path, default="results")
    logs.set_defaults(func=cmd_logs)

    board = sub.add_parser("leaderboard", help="rank a sweep's architectures, beside the paper's Table 2")
    _sweep_argument(board)
    board.add_argument("--format", choices=["table", "csv", "markdown", "json"], default="table")
    board.add_argument("--sort", default="accuracy", help="metric to rank by")
    board.add_argument("--compare", choices=["paper"], help="put the paper's Table 2 beside ours")
    board.set_defaults(func=cmd_leaderboard)

    report = sub.add_parser("report", help="one self-contained report of a sweep: tables, figures, settings")
    _sweep_argument(report)
    report.add_argument("--format", choices=["html", "md"], default="html")
    report.set_defaults(func=cmd_report)

    predict = sub.add_parser("predict", help="the probability that each image is fake, by a trained run")
    predict.add_argument("--run", required=True, help="SWEEP/ARCH (its first completed seed) or SWEEP/RUN-ID")
    predict.add_argument("images", nargs="+", type=user_path)
    predict.add_argument("--format", choices=["table", "json"], default="table")
    predict.add_argument("--results", type=user_path, default="results")
    predict.set_defaults(func=cmd_predict)
    add_perf_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, or a bad argument already explained in one line
        return int(stop.code or 0)
    try:
        return int(args.func(args))
    except UserError as error:
        message = " ".join(str(error).split())  # one line, whatever the message holds
        message = CONTROL.sub(lambda found: repr(found.group())[1:-1], message)  # a NUL from a path, shown as \x00
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
