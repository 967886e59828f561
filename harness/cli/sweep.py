"""`sweep`: plan a sweep and submit it, or resume one. The options that plan a sweep (what it runs) are
declared once, in their own group, and read into a SweepRequest in one place; the cluster's options
(each backend declares its own) make its settings; --resume may change the second kind only."""
import argparse
from contextlib import nullcontext
from dataclasses import replace
from typing import Any

from harness.cli.options import (
    add_interval,
    add_results,
    dataset_path,
    non_negative_int,
    positive_float,
    positive_int,
    profile_name_or_path,
    world_sizes,
)
from harness.errors import UserError


def add_planning_options(sweep: argparse.ArgumentParser) -> list[str]:
    """What the sweep runs: its dataset, architectures, seeds, variants and training options. Returns
    their names, which --resume refuses (a resumed sweep keeps what it was planned with)."""
    from harness.training.config import MODES, OPTIMIZERS, PRECISIONS, SELECT_BY, TrainConfig
    from harness.zoo import WEIGHTS_HELP
    from harness.zoo.preprocessing import KERAS_INTERPOLATIONS, PREPROCESSING_CHOICES
    from harness.zoo.registry import MODEL_SPECS

    defaults = TrainConfig(model="")
    demo_batches = ", ".join(f"{spec.name} {spec.demo_batch_size}" for spec in MODEL_SPECS.values() if spec.demo_batch_size)
    planning = sweep.add_argument_group("what the sweep runs (fixed when it starts: --resume keeps them)")
    actions: list[argparse.Action] = []

    def option(*flags: str, **settings: Any) -> None:
        actions.append(planning.add_argument(*flags, **settings))

    option("--dataset", type=dataset_path, default="demo", help="a folder with manifest.csv (from data prepare), or 'demo'")
    option("--synthetic", action="store_true",
           help="no dataset: each job times the training step and inference on random inputs of the run's batch and "
           "image size (a GPU acceptance test, seconds an architecture); speed figures only, kept apart from runs on data")
    option("--models", help="comma-separated architectures: the paper's names or any timm model name (default: the eight)")
    option("--seeds", type=positive_int, default=1, help="runs per architecture")
    option("--resplit", action="store_true",
           help="each seed also draws its own train/val/test split (by source group): intervals then cover the split")
    option("--epochs", type=positive_int, default=defaults.epochs)
    option("--batch-size", type=positive_int,
           help=f"images a step (default: {defaults.batch_size}; on the demo, {demo_batches})")
    option("--lr", type=positive_float,
           help=f"learning rate for every architecture (default: each one's own, see the zoo; else {defaults.lr:g})")
    option("--warmup-epochs", type=non_negative_int,
           help="raise the lr linearly over the first N epochs (default: each architecture's own, else 0)")
    option("--optimizer", choices=OPTIMIZERS, default=defaults.optimizer)
    option("--mode", choices=MODES, default=defaults.mode, help="transfer: frozen backbone (the paper); finetune: all layers")
    option("--weights", default=defaults.weights, help=WEIGHTS_HELP)
    option("--image-size", type=positive_int,
           help="input side in pixels (default: each architecture's own; on the demo 35, or the architecture's minimum)")
    option("--preprocessing", choices=PREPROCESSING_CHOICES, default=defaults.preprocessing,
           help="timm: each model's own config; paper: each model's Keras mode (caffe for ResNet50/VGG, "
           "torch for DenseNet121, tf for the others); caffe/torch/tf: one Keras mode for every model")
    option("--keras-resize", choices=KERAS_INTERPOLATIONS, default=defaults.keras_resize,
           help="a Keras mode's resize: bilinear as tf.image.resize (Keras' default) or nearest as load_img")
    option("--select-by", choices=SELECT_BY, default=defaults.select_by,
           help="the epoch each run keeps and tests: highest val accuracy (ties: lowest loss), or lowest val loss")
    option("--precision", choices=PRECISIONS, default=defaults.precision)
    option("--channels-last", action="store_true")
    option("--tf32", action="store_true", help="fp32 on TF32 tensor cores (default: IEEE fp32, as MFU assumes)")
    option("--compile", action="store_true",
           help="run the training step through torch.compile (compile time recorded apart; eager if it fails)")
    option("--device", default=defaults.device, help="auto, cpu, cuda or cuda:N")
    add_rank_options(option, defaults)
    option("--cross-generator", action="store_true",
           help="per architecture, one run per fake generator of the dataset, each tested on every generator")
    option("--ablate-preprocessing", action="store_true",
           help="per architecture: its own preprocessing (timm), its Keras mode (paper) and caffe's for all "
           "(the paper's likely input); variants that feed the same input run once")
    option("--every-node", action="store_true",
           help="per architecture, one run on each node of the training partition, pinned to it: "
           "the leaderboard then names the nodes that lie below the partition's spread")
    option("--allow-random-backbone", action="store_true",
           help="accept --mode transfer --weights none (a frozen random backbone; refused otherwise)")
    option("--keep-checkpoints", action="store_true",
           help="a completed run keeps its resume checkpoints (state.pt, the optimiser's state too), not only best.pt")
    option("--name", help="the sweep id (default: a timestamp)")
    return [action.dest for action in actions]


def add_rank_options(option: Any, defaults: Any) -> None:
    """The ranks of a run (data-parallel training), and scaling sweeps."""
    from harness.training.config import LR_SCALING

    option("--gpus-per-run", dest="world_size", metavar="N", type=positive_int, default=defaults.world_size,
           help="ranks that train each run together, data-parallel: one per GPU (on a CPU, one process each); "
           "each takes --batch-size images a step")
    option("--nodes-per-run", dest="nodes", metavar="M", type=positive_int, default=defaults.nodes,
           help="nodes a run's ranks are spread over, as many on each (on a cluster's scheduler)")
    option("--lr-scaling", choices=LR_SCALING, default=defaults.lr_scaling,
           help="the lr as the global batch grows with the ranks: none, or linear (lr x ranks, Goyal et al. 2017)")
    option("--sync-bn", action="store_true", help="batch normalisation over the global batch, not each rank's share")
    option("--scaling", type=world_sizes, metavar="N,N,...",
           help="a scaling sweep: each architecture at each of these --gpus-per-run, e.g. 1,2,4,8 (1 among them: "
           "speedups are against it)")


# How an option a backend declares (cluster.base.Option) is read from the command line, by its kind.
KINDS: dict[str, dict[str, Any]] = {"text": {}, "count": {"type": positive_int}, "name_or_file": {"type": profile_name_or_path},
                                    "repeated": {"action": "append", "default": []},
                                    "switch": {"action": argparse.BooleanOptionalAction, "default": None}}


def add_backend_options(sweep: argparse.ArgumentParser) -> dict[str, tuple[str, str, str]]:
    """Each backend's own options, in a group of its own. Returns, per option, (its backend, the field the
    backend's settings read it under, its flag)."""
    from harness.cluster import BACKENDS, get_backend

    owners = {}
    for name in BACKENDS:
        backend = get_backend(name)
        group = sweep.add_argument_group(backend.options_title)
        for option in backend.options():
            dest = f"{name}.{option.field}"
            metavar = option.metavar or option.flag.lstrip("-").replace("-", "_").upper()
            group.add_argument(option.flag, dest=dest, help=option.help, metavar=metavar, **KINDS[option.kind])
            owners[dest] = (name, option.field, option.flag)
    return owners


def add_commands(commands: Any) -> None:
    commands.add_parser("sweep", help="train and evaluate every (architecture, seed) as a job; prints the sweep id",
                        declare=declare_sweep_options)


def declare_sweep_options(sweep: argparse.ArgumentParser) -> None:
    from harness.cluster import BACKENDS

    planning = add_planning_options(sweep)
    sweep.add_argument("--cluster", choices=["auto", *BACKENDS], default="auto",
                       help="auto: the backend whose own options are given (below), else the first of "
                       f"{', '.join(BACKENDS)} that answers here")
    add_results(sweep)
    sweep.add_argument("--wait", action="store_true", help="follow the sweep until every run ends")
    add_interval(sweep)
    sweep.add_argument("--resume", metavar="SWEEP",
                       help="resubmit the runs of SWEEP that have no result, with the cluster settings it was submitted with")
    sweep.add_argument("--force", action="store_true", help="with --resume: resubmit runs whose job is still queued or running")
    sweep.add_argument("--trust-code", action="store_true",
                       help="with --resume: run the sweep's code/ snapshot even where it is not what was submitted (its "
                       "digest in sweep.json differs, or it has none); see docs/reliability.md for what a shared results "
                       "folder trusts")
    sweep.add_argument("--dry-run", action="store_true", help="print what would run (a scheduler's batch scripts) instead of submitting")
    sweep.add_argument("--check", action="store_true",
                       help="ask the cluster's scheduler whether and when the jobs would start, without submitting")
    owners = add_backend_options(sweep)
    sweep.set_defaults(func=cmd_sweep, planning_defaults={name: sweep.get_default(name) for name in planning},
                       backend_options=owners)


def backend_options(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The backends' options given on the command line: backend -> {field: value}."""
    given: dict[str, dict[str, Any]] = {}
    for dest, (name, field, _) in args.backend_options.items():
        if getattr(args, dest) not in (None, []):
            given.setdefault(name, {})[field] = getattr(args, dest)
    return given


def backend_settings(args: argparse.Namespace, cluster: str, stored: dict[str, Any] | None = None) -> Any:
    """The settings of the backend the sweep goes to, from its options given (and stored: a resumed
    sweep's own). Another backend's option would be ignored: it is refused, once its value is checked (a
    bad value is named as such first)."""
    from harness.cluster import get_backend

    given = backend_options(args)
    for name, values in given.items():
        if name != cluster:
            get_backend(name).settings(values)
            flag = next(flag for owner, field, flag in args.backend_options.values() if owner == name and field in values)
            raise UserError(f"{flag} is an option of --cluster {name}, but the sweep runs on --cluster {cluster}: drop it, "
                            f"or use --cluster {name}")
    return get_backend(cluster).settings(given.get(cluster, {}), stored)


def sweep_request(args: argparse.Namespace) -> Any:
    """The planning options as a SweepRequest (every training option by its TrainConfig name)."""
    from harness import sweeps
    from harness.training.config import TRAIN_OPTIONS, train_options

    train = train_options(**{name: getattr(args, name) for name in TRAIN_OPTIONS if name in vars(args)})
    return sweeps.SweepRequest(dataset=args.dataset, models=sweeps.parse_models(args.models), seeds=args.seeds,
                               train=train, results=args.results, name=args.name, cross_generator=args.cross_generator,
                               ablate_preprocessing=args.ablate_preprocessing, scaling=args.scaling,
                               batch_size_given=args.batch_size is not None)


def cmd_sweep(args: argparse.Namespace) -> int:
    if args.force and not args.resume:
        raise UserError("--force resubmits the live runs of a sweep: it goes with --resume SWEEP")
    if args.trust_code and not args.resume:
        raise UserError("--trust-code runs a resumed sweep's code snapshot as it is: it goes with --resume SWEEP")
    if args.dry_run and args.check:
        raise UserError("--dry-run prints what would run and --check asks the scheduler about it: give one")
    return resume_sweep(args) if args.resume else new_sweep(args)


def new_sweep(args: argparse.Namespace) -> int:
    from harness import sweeps
    from harness.cluster import chosen_backend, get_backend

    cluster = chosen_backend(args.cluster, set(backend_options(args)))
    backend = get_backend(cluster)
    settings = backend_settings(args, cluster)
    request = sweep_request(args)
    settings = backend.resolve(settings)  # the site's settings where the profile and the options set none
    if args.every_node:
        request = replace(request, nodes=backend.nodes(settings, gpus=request.train.get("device") != "cpu"))
    sweep, spec = sweeps.plan(request, {"executor": cluster, **settings.to_json()})
    run_ids = [r.run_id for r in spec.runs]
    if args.dry_run or args.check:
        return shown(sweeps.preview(sweep, spec, backend, settings, run_ids, ask=args.check), args.check)
    return submitted(args, sweep, cluster, run_ids, sweeps.start(sweep, spec, backend, settings))


def resume_sweep(args: argparse.Namespace) -> int:
    from harness import sweeps
    from harness.cli.render import say
    from harness.cli.track import watch
    from harness.cluster import chosen_backend, get_backend
    from harness.store.atomic import locked
    from harness.store.paths import find_sweep
    from harness.store.records import read_spec

    # a resumed sweep keeps the options it was planned with: one given anew would be silently ignored
    given = [name for name, default in args.planning_defaults.items() if getattr(args, name) != default]
    if given:
        raise UserError(f"--{given[0].replace('_', '-')} cannot change a sweep being resumed (--resume keeps "
                        "its runs and training options; only cluster options such as --time apply): start a new sweep")
    sweeps.check_results_path(args.results)
    sweep = find_sweep(args.results, args.resume)
    spec = read_spec(sweep)
    stored_cluster, stored = sweeps.resume_settings(spec, sweep)
    cluster = chosen_backend(args.cluster, set(backend_options(args)), recorded=stored_cluster)
    backend = get_backend(cluster)
    settings = backend_settings(args, cluster, stored if cluster == stored_cluster else None)
    sweeps.check_resumable(sweep, spec, args.trust_code)
    # a second resume at once waits, then finds these runs queued (a preview writes nothing, not even a lock)
    with nullcontext() if args.dry_run or args.check else locked(sweep.jobs_lock):
        run_ids, alive = sweeps.runs_to_resume(sweep, force=args.force)
        for status in alive:
            say(f"{status.run_id} is {status.state} (job {status.job_id}): not resubmitted (--force to)")
        submission = None
        if not run_ids:
            say(f"sweep {spec.sweep_id}: no run to resubmit")
            print(spec.sweep_id, flush=True)
        else:
            settings = backend.resolve(settings)
            if args.dry_run or args.check:
                return shown(sweeps.preview(sweep, spec, backend, settings, run_ids, ask=args.check), args.check)
            submission = sweeps.resubmit(sweep, spec, backend, settings, run_ids)
    if submission is None:
        return watch(sweep, args.interval) if args.wait else 0
    return submitted(args, sweep, cluster, run_ids, submission)


def shown(lines: list[str], asked: bool) -> int:
    """--dry-run: what would run; --check: the scheduler's word on it (exit 1 when a job would not run)."""
    for line in lines:
        print(line)
    return 1 if asked and not all(line.startswith("ok") for line in lines) else 0


def submitted(args: argparse.Namespace, sweep: Any, cluster: str, run_ids: list[str], submission: Any) -> int:
    """Say what was queued, print the sweep id (stdout, for scripts), and follow it with --wait."""
    from harness.cli.render import say
    from harness.cli.track import watch

    say(f"sweep {sweep.sweep_id}: {len(run_ids)} runs on {cluster} ({sweep.folder})")
    if submission.preprocess_job:
        say(f"preprocessing job {submission.preprocess_job}; training job ids: {', '.join(sorted(set(submission.tasks.values())))}")
    print(sweep.sweep_id, flush=True)
    return watch(sweep, args.interval) if args.wait else 0
