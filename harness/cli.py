"""The command line: parses, calls the library, prints. Bad input ends in one line and exit code 2."""
import argparse
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from harness.errors import UserError

# Piped output is not cut to 80 columns: a table in a log or a file keeps every column whole.
out = Console() if sys.stdout.isatty() else Console(width=250)
err = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=250)
PERCENT = {"p_fake", "accuracy", "loss", "precision", "recall", "f1", "auc", "average_precision", "eer",
           "accuracy_at_threshold", "gpu_util_mean", "val_accuracy", "mfu", "data_wait_fraction"}


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


def _fmt(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if column in PERCENT or column.removeprefix("paper_") in PERCENT:
        return f"{100 * value:.2f}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


LABELS = {"accuracy": "acc", "precision": "prec", "recall": "recall", "f1": "F1", "auc": "AUC", "loss": "loss",
          "train_images_per_s": "train img/s", "infer_images_per_s": "infer img/s", "gpu_util_mean": "GPU util",
          "val_accuracy": "val acc", "paper_params": "paper params", "input_size": "input", "keras_mode": "keras mode"}


def label(column: str) -> str:
    """A short column header; percentages say so."""
    base = column.removeprefix("paper_")
    text = LABELS.get(column) or (f"paper {LABELS.get(base, base)}" if column.startswith("paper_") else column)
    return text + (" %" if base in PERCENT else "")


def print_table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(label(column), justify="left" if column in ("model", "status", "run_id", "reason", "node", "timm") else "right")
    for row in rows:
        table.add_row(*(escape(_fmt(c, row.get(c))) for c in columns))  # "ResNet50 [caffe]" is not markup
    out.print(table)


# --- models ---
def cmd_models(args: argparse.Namespace) -> int:
    from harness.models import describe_models
    rows = describe_models()
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    print_table(rows, ["model", "timm", "params", "paper_params", "delta", "input_size", "interpolation", "keras_mode"],
                title="The paper's eight architectures (parameters counted as Keras counts them)")
    for row in rows:
        if row["note"]:
            out.print(f"[bold]{row['model']}[/bold] {row['delta']:+,}: {row['note']}")
    return 0


# --- data ---
def cmd_data_prepare(args: argparse.Namespace) -> int:
    from harness.data.prepare import prepare_dataset
    report = prepare_dataset(args.real, args.fake, args.out, args.per_class, args.seed, args.reencode)
    print_table([{"label": label, **counts} for label, counts in report.counts.items()], ["label", "train", "val", "test"],
                title=f"{report.manifest}")
    if report.skipped:
        err.print(f"skipped {len(report.skipped)} files that do not decode:")
        for path, reason in report.skipped:
            err.print(f"  {path}: {reason}")
    if report.duplicates_dropped:
        out.print(f"dropped {report.duplicates_dropped} exact duplicates (same content hash)")
    for digest in report.in_both_classes:
        err.print(f"[yellow]warning:[/yellow] an image (sha256 {digest[:16]}...) is both real and fake; dropped from both")
    for warning in report.format_warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}")
    return 0


def cmd_data_demo(args: argparse.Namespace) -> int:
    from harness.data.demo import make_demo
    generators = tuple(g.strip() for g in args.generators.split(",") if g.strip())
    path = make_demo(args.out, args.per_class, args.size, args.seed, generators)
    frame = pd.read_csv(path)
    frame["kind"] = frame["label"].where(frame["label"] == "real", "fake: " + frame["generator"].fillna(""))
    counts = frame.groupby(["kind", "split"]).size().unstack(fill_value=0)
    print_table([{"kind": kind, **row} for kind, row in counts.to_dict("index").items()], ["kind", "train", "val", "test"],
                title=str(path))
    return 0


# --- sweep ---
def cmd_sweep(args: argparse.Namespace) -> int:
    from harness import launch
    from harness.models import parse_model_list
    from harness.profiles import Profile, load_profile
    from harness.results import find_sweep, read_result, read_sweep, sweep_dir
    from harness.slurm import slurm_answers
    from harness.sweep import (DEMO, generator_variants, make_spec, new_sweep_id, preprocessing_variants, resolve_dataset,
                               train_options, write_spec)

    options = dict(cpu_partition=args.cpu_partition, gpu_partition=args.partition, gpu_type=args.gpu_type,
                   time_min=args.time, mem_gb=args.mem, cpus_per_task=args.cpus_per_task, account=args.account,
                   qos=args.qos, array_parallelism=args.array_parallelism)
    # naming a partition means Slurm; otherwise Slurm when one answers (or, resuming, where the sweep ran)
    asks_for_slurm = args.partition or args.cpu_partition or args.dry_run
    cluster = args.cluster if args.cluster != "auto" else "slurm" if asks_for_slurm else None
    if args.resume:
        folder = find_sweep(args.results, args.resume)
        spec = read_sweep(folder)
        stored = dict(spec["cluster"])  # the sweep's own settings; options given now override them
        executor = stored.pop("executor")
        cluster = cluster or executor
        profile = (load_profile(args.profile) if args.profile else Profile(**stored)).override(**options)
        run_ids = [r["run_id"] for r in spec["runs"] if (read_result(folder, r["run_id"]) or {}).get("status") != "COMPLETED"]
        if not run_ids:
            out.print(f"sweep {spec['sweep_id']}: every run has a result; nothing to resubmit")
            return 0
    else:
        profile = load_profile(args.profile or "local").override(**options)
        cluster = cluster or ("slurm" if slurm_answers() is None else "local")
        results = Path(args.results)
        image_size = args.image_size or (DEMO["size"] if args.dataset == "demo" else None)
        train = train_options(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
                              mode=args.mode, weights=args.weights, image_size=image_size, preprocessing=args.preprocessing,
                              select_by=args.select_by, precision=args.precision, channels_last=args.channels_last,
                              device=args.device)
        models = parse_model_list(args.models)
        sweep_id = new_sweep_id(args.name)
        folder = sweep_dir(results, sweep_id)
        if args.cross_generator and args.ablate_preprocessing:
            raise UserError("--cross-generator and --ablate-preprocessing each make their own variants: use one per sweep")
        variants = (generator_variants(resolve_dataset(args.dataset, results)) if args.cross_generator else
                    preprocessing_variants() if args.ablate_preprocessing else None)
        spec = make_spec(sweep_id, Path(args.dataset), results, models, args.seeds, train,
                         {"executor": cluster, **asdict(profile)}, variants)
        run_ids = [r["run_id"] for r in spec["runs"]]
    if args.dry_run:
        if cluster != "slurm":
            raise UserError("--dry-run shows Slurm batch scripts: it does not apply to --cluster local")
        for script in launch.dry_run_scripts(folder, profile, run_ids):
            print(script)
        return 0
    launch.preflight(cluster, profile, folder.parent)
    if not args.resume:
        spec["dataset"] = str(resolve_dataset(args.dataset, folder.parent))
        write_spec(folder, spec)
    if cluster == "slurm":
        submission = launch.submit_slurm(folder, profile, run_ids)
    else:
        submission = launch.submit_local(folder, run_ids, args.max_parallel or launch.default_local_parallelism(), profile.time_min)
    launch.record_submission(folder, submission)
    out.print(f"sweep {spec['sweep_id']}: {len(run_ids)} runs on {cluster} ({folder})")
    if submission.preprocess_job:
        out.print(f"preprocessing job {submission.preprocess_job}; training job ids: {', '.join(sorted(set(submission.tasks.values())))}")
    print(spec["sweep_id"])
    if args.wait:
        return follow(folder)
    return 0


# --- status ---
STATUS_COLUMNS = ["run_id", "state", "job_id", "partition", "node", "elapsed", "epoch", "val_accuracy", "requeues", "reason"]


def status_table(folder: Path) -> tuple[Table, list]:
    from harness.status import sweep_status
    statuses, pre = sweep_status(folder)
    table = Table(title=f"sweep {folder.name}; preprocessing: {pre.get('state')}"
                  + (f", {pre['done']}/{pre['total']} images at {pre['images_per_s']:.0f}/s" if "done" in pre else ""))
    for column in STATUS_COLUMNS:
        table.add_column(label(column))
    for s in statuses:
        row = s.as_dict()
        if row["epoch"] is not None and row["epochs"]:
            row["epoch"] = f"{row['epoch']}/{row['epochs']}"
        table.add_row(*(escape(_fmt(c, row[c])) for c in STATUS_COLUMNS))
    return table, statuses


def follow(folder: Path, interval_s: float = 2.0) -> int:
    """Show the sweep's status until every run is final; exit 0 only when all completed."""
    from harness.status import is_final
    with Live(console=err, refresh_per_second=1, transient=not err.is_terminal) as live:
        while True:
            table, statuses = status_table(folder)
            live.update(table)
            if all(is_final(s) for s in statuses):
                break
            time.sleep(interval_s)
    out.print(table)
    failed = [s.run_id for s in statuses if s.state != "COMPLETED"]
    if failed:
        err.print(f"{len(failed)} runs did not complete: {', '.join(failed)}")
    return 1 if failed else 0


def cmd_status(args: argparse.Namespace) -> int:
    from harness.results import find_sweep
    from harness.status import sweep_status
    folder = find_sweep(args.results, args.sweep)
    if args.format == "json":
        statuses, pre = sweep_status(folder)
        print(json.dumps({"sweep_id": folder.name, "preprocess": pre, "runs": [s.as_dict() for s in statuses]}, indent=2))
        return 0
    if args.watch:
        with Live(console=out, refresh_per_second=1) as live:
            while True:
                live.update(status_table(folder)[0])
                time.sleep(2)
    out.print(status_table(folder)[0])
    return 0


# --- leaderboard ---
def cmd_leaderboard(args: argparse.Namespace) -> int:
    from harness.leaderboard import COLUMNS, SORTABLE, leaderboard, with_paper
    from harness.results import find_sweep
    if args.sort not in SORTABLE:
        raise UserError(f"cannot sort by {args.sort!r}; choose one of {', '.join(SORTABLE)}")
    folder = find_sweep(args.results, args.sweep)
    table = leaderboard(folder, args.sort)
    columns = list(COLUMNS)
    if table["seeds"].max() > 1:  # several seeds: show each accuracy's 95% interval and which ranks it cannot separate
        table["acc 95% CI"] = [f"[{100 * lo:.2f}, {100 * hi:.2f}]" if pd.notna(lo) else "-"
                                    for lo, hi in zip(table["accuracy_lo"], table["accuracy_hi"])]
        columns[columns.index("accuracy") + 1:columns.index("accuracy") + 1] = ["acc 95% CI"]
        columns.insert(columns.index("status"), "overlaps")
    if args.compare == "paper":
        table = with_paper(table)
        columns += ["paper_params", "paper_accuracy", "paper_loss", "paper_precision", "paper_recall", "paper_f1"]
    if args.format == "json":
        print(table.astype(object).where(table.notna(), None).to_json(orient="records", indent=2))
    elif args.format == "csv":
        print(table.to_csv(index=False), end="")
    else:
        display = table[columns].astype(object).where(table[columns].notna(), None)
        rows = display.to_dict("records")
        if args.format == "markdown":
            formatted = pd.DataFrame([{label(c): _fmt(c, r[c]) for c in columns} for r in rows])
            print(formatted.to_markdown(index=False))
        else:
            print_table(rows, columns, title=f"leaderboard of sweep {folder.name} (mean over seeds)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report import write_report
    from harness.results import find_sweep
    path = write_report(find_sweep(args.results, args.sweep), args.format)
    out.print(f"report: {path}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from harness.predict import find_run, predict
    run = find_run(args.results, args.run)
    rows = [{"image": path, "p_fake": p, "verdict": "-" if p is None else ("fake" if p >= 0.5 else "real"), "reason": reason}
            for path, p, reason in predict(run, args.images)]
    if args.format == "json":
        print(json.dumps({"run": str(run), "predictions": rows}, indent=2))
    else:
        print_table(rows, ["image", "p_fake", "verdict", "reason"], title=f"P(fake) by {run.parent.parent.name}/{run.name}")
    return 0 if all(r["p_fake"] is not None for r in rows) else 1


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (what is wrong and where), not a usage block."""

    def error(self, message: str) -> None:
        self.exit(2, f"error: {self.prog.removeprefix('python -m ')}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from harness.launch import default_local_parallelism
    from harness.models import WEIGHTS_HELP
    from harness.preprocessing import PREPROCESSING_CHOICES
    from harness.training import MODES, OPTIMIZERS, PRECISIONS, SELECT_BY, TrainConfig

    defaults = TrainConfig(model="ResNet50")
    parser = Parser(prog="python -m harness", description="Benchmark deep-fake face detectors on Slurm.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    models = sub.add_parser("models", help="the paper's eight architectures, their parameter counts and preprocessing")
    models.add_argument("--format", choices=["table", "json"], default="table")
    models.set_defaults(func=cmd_models)

    data = sub.add_parser("data", help="datasets: prepare your own, or build the demo").add_subparsers(
        dest="data_command", required=True, parser_class=Parser)
    prepare = data.add_parser("prepare", help="check, deduplicate and split a real and a fake folder into manifest.csv")
    prepare.add_argument("--real", type=Path, required=True, help="folder of real images (any depth)")
    prepare.add_argument("--fake", type=Path, required=True, action="append",
                         help="folder of fake images (any depth); repeat it, one folder per generator")
    prepare.add_argument("--out", type=Path, required=True, help="folder for manifest.csv (and re-encoded images)")
    prepare.add_argument("--per-class", type=positive_int, help="sample this many images per class (the paper: 5000)")
    prepare.add_argument("--seed", type=non_negative_int, default=0)
    prepare.add_argument("--reencode", metavar="png|jpeg:Q", help="pass both classes through the same codec")
    prepare.set_defaults(func=cmd_data_prepare)
    demo = data.add_parser("demo", help="build the built-in demo dataset (no download)")
    demo.add_argument("--out", type=Path, required=True)
    demo.add_argument("--per-class", type=positive_int, default=400)
    demo.add_argument("--size", type=positive_int, default=64, help="image side in pixels")
    demo.add_argument("--seed", type=non_negative_int, default=0)
    demo.add_argument("--generators", default="upsampler",
                      help="kinds of fake, comma-separated: upsampler (GAN-style upsamplers), bilinear_conv, dcgan")
    demo.set_defaults(func=cmd_data_demo)

    sweep = sub.add_parser("sweep", help="train and evaluate every (architecture, seed) as a job")
    sweep.add_argument("--dataset", default="demo", help="a folder with manifest.csv (from data prepare), or 'demo'")
    sweep.add_argument("--models", help="comma-separated architectures (default: all eight)")
    sweep.add_argument("--seeds", type=positive_int, default=1, help="runs per architecture")
    sweep.add_argument("--epochs", type=positive_int, default=defaults.epochs)
    sweep.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    sweep.add_argument("--lr", type=positive_float, default=defaults.lr)
    sweep.add_argument("--optimizer", choices=list(OPTIMIZERS), default=defaults.optimizer)
    sweep.add_argument("--mode", choices=MODES, default=defaults.mode, help="transfer: frozen backbone (the paper); finetune: all layers")
    sweep.add_argument("--weights", default=defaults.weights, help=WEIGHTS_HELP)
    sweep.add_argument("--image-size", type=positive_int, help="input side in pixels (default: each architecture's own; the demo's 80)")
    sweep.add_argument("--preprocessing", choices=PREPROCESSING_CHOICES, default=defaults.preprocessing,
                       help="timm: each model's own config; caffe/torch/tf: a Keras mode for every model")
    sweep.add_argument("--select-by", choices=list(SELECT_BY), default=defaults.select_by,
                       help="the epoch each run keeps and tests: highest val accuracy (ties: lowest loss), or lowest val loss")
    sweep.add_argument("--precision", choices=list(PRECISIONS), default=defaults.precision)
    sweep.add_argument("--channels-last", action="store_true")
    sweep.add_argument("--device", default=defaults.device, help="auto, cpu or cuda")
    sweep.add_argument("--cross-generator", action="store_true",
                       help="per architecture, one run per fake generator of the dataset, each tested on every generator")
    sweep.add_argument("--ablate-preprocessing", action="store_true",
                       help="per architecture, its own preprocessing and Keras' caffe mode (the paper's likely input)")
    sweep.add_argument("--cluster", choices=["auto", "slurm", "local"], default="auto",
                       help="auto: Slurm when --partition is given or a Slurm controller answers, else this machine")
    sweep.add_argument("--results", type=Path, default=Path("results"), help="where sweeps are written")
    sweep.add_argument("--name", help="the sweep id (default: a timestamp)")
    sweep.add_argument("--wait", action="store_true", help="follow the sweep until every run ends")
    sweep.add_argument("--resume", metavar="SWEEP",
                       help="resubmit the runs of SWEEP that have no result, with the cluster settings it was submitted with")
    sweep.add_argument("--dry-run", action="store_true", help="print the batch scripts instead of submitting")
    sweep.add_argument("--max-parallel", type=positive_int, help=f"local runs at a time (default here: {default_local_parallelism()})")
    slurm = sweep.add_argument_group("Slurm (defaults from the profile)")
    slurm.add_argument("--profile", help="a profile name under slurm/profiles/ or a .toml path (default: local; "
                       "with --resume, the sweep's own settings)")
    slurm.add_argument("--partition", help="GPU partition of the training tasks")
    slurm.add_argument("--cpu-partition", help="CPU partition of the preprocessing job")
    slurm.add_argument("--gpu-type", help="GPU type in --gres=gpu:TYPE:1")
    slurm.add_argument("--time", type=positive_int, help="time limit of a training task, in minutes")
    slurm.add_argument("--mem", type=positive_float, help="memory of a training task, in GB")
    slurm.add_argument("--cpus-per-task", type=positive_int)
    slurm.add_argument("--array-parallelism", type=positive_int, help="training tasks running at once")
    slurm.add_argument("--account")
    slurm.add_argument("--qos")
    sweep.set_defaults(func=cmd_sweep)

    status = sub.add_parser("status", help="where every job of a sweep stands")
    status.add_argument("sweep", nargs="?", help="sweep id or unique prefix (default: the latest)")
    status.add_argument("--format", choices=["table", "json"], default="table")
    status.add_argument("--watch", action="store_true")
    status.add_argument("--results", type=Path, default=Path("results"))
    status.set_defaults(func=cmd_status)

    board = sub.add_parser("leaderboard", help="rank a sweep's architectures, beside the paper's Table 2")
    board.add_argument("sweep", nargs="?", help="sweep id or unique prefix (default: the latest)")
    board.add_argument("--format", choices=["table", "csv", "markdown", "json"], default="table")
    board.add_argument("--sort", default="accuracy", help="metric to rank by")
    board.add_argument("--compare", choices=["paper"], help="put the paper's Table 2 beside ours")
    board.add_argument("--results", type=Path, default=Path("results"))
    board.set_defaults(func=cmd_leaderboard)
    report = sub.add_parser("report", help="one self-contained report of a sweep: tables, figures, settings")
    report.add_argument("sweep", nargs="?", help="sweep id or unique prefix (default: the latest)")
    report.add_argument("--format", choices=["html", "md"], default="html")
    report.add_argument("--results", type=Path, default=Path("results"))
    report.set_defaults(func=cmd_report)

    predict = sub.add_parser("predict", help="the probability that each image is fake, by a trained run")
    predict.add_argument("--run", required=True, help="SWEEP/ARCH (its first completed seed) or SWEEP/RUN-ID")
    predict.add_argument("images", nargs="+", type=Path)
    predict.add_argument("--format", choices=["table", "json"], default="table")
    predict.add_argument("--results", type=Path, default=Path("results"))
    predict.set_defaults(func=cmd_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, or a bad argument already explained in one line
        return int(stop.code or 0)
    try:
        return args.func(args)
    except UserError as error:
        err.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        return 130
