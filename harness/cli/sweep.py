"""`sweep`: plan a sweep and submit it, or resume one. The options that plan a sweep (what it runs) are
declared once, in their own group, and read into a SweepRequest in one place; the cluster's options
make the Profile; --resume may change the second kind only."""
import argparse
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
    from harness.training.config import LR_SCALING, MODES, OPTIMIZERS, PRECISIONS, SELECT_BY, TrainConfig
    from harness.zoo import WEIGHTS_HELP
    from harness.zoo.preprocessing import KERAS_INTERPOLATIONS, PREPROCESSING_CHOICES

    defaults = TrainConfig(model="")
    planning = sweep.add_argument_group("what the sweep runs (fixed when it starts: --resume keeps them)")
    actions: list[argparse.Action] = []

    def option(*flags: str, **settings: Any) -> None:
        actions.append(planning.add_argument(*flags, **settings))

    option("--dataset", type=dataset_path, default="demo", help="a folder with manifest.csv (from data prepare), or 'demo'")
    option("--models", help="comma-separated architectures: the paper's names or any timm model name (default: the eight)")
    option("--seeds", type=positive_int, default=1, help="runs per architecture")
    option("--resplit", action="store_true",
           help="each seed also draws its own train/val/test split (by source group): intervals then cover the split")
    option("--epochs", type=positive_int, default=defaults.epochs)
    option("--batch-size", type=positive_int, default=defaults.batch_size)
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
    option("--gpus-per-run", dest="world_size", metavar="N", type=positive_int, default=defaults.world_size,
           help="ranks that train each run together, data-parallel: one per GPU (on a CPU, one process each); "
           "each takes --batch-size images a step")
    option("--nodes-per-run", dest="nodes", metavar="M", type=positive_int, default=defaults.nodes,
           help="nodes a run's ranks are spread over, as many on each (Slurm)")
    option("--lr-scaling", choices=LR_SCALING, default=defaults.lr_scaling,
           help="the lr as the global batch grows with the ranks: none, or linear (lr x ranks, Goyal et al. 2017)")
    option("--sync-bn", action="store_true", help="batch normalisation over the global batch, not each rank's share")
    option("--scaling", type=world_sizes, metavar="N,N,...",
           help="a scaling sweep: each architecture at each of these --gpus-per-run, e.g. 1,2,4,8 (1 among them: "
           "speedups are against it)")
    option("--cross-generator", action="store_true",
           help="per architecture, one run per fake generator of the dataset, each tested on every generator")
    option("--ablate-preprocessing", action="store_true",
           help="per architecture: its own preprocessing (timm), its Keras mode (paper) and caffe's for all "
           "(the paper's likely input); variants that feed the same input run once")
    option("--allow-random-backbone", action="store_true",
           help="accept --mode transfer --weights none (a frozen random backbone; refused otherwise)")
    option("--keep-checkpoints", action="store_true",
           help="a completed run keeps its resume checkpoints (state.pt, the optimiser's state too), not only best.pt")
    option("--name", help="the sweep id (default: a timestamp)")
    return [action.dest for action in actions]


def add_commands(commands: Any) -> None:
    from harness.cluster import BACKENDS
    from harness.cluster.local import default_parallelism

    sweep = commands.add_parser("sweep", help="train and evaluate every (architecture, seed) as a job; prints the sweep id")
    planning = add_planning_options(sweep)
    sweep.add_argument("--cluster", choices=["auto", *BACKENDS], default="auto",
                       help="auto: Slurm when --partition is given or a Slurm controller answers, else this machine")
    add_results(sweep)
    sweep.add_argument("--wait", action="store_true", help="follow the sweep until every run ends")
    add_interval(sweep)
    sweep.add_argument("--resume", metavar="SWEEP",
                       help="resubmit the runs of SWEEP that have no result, with the cluster settings it was submitted with")
    sweep.add_argument("--force", action="store_true", help="with --resume: resubmit runs whose job is still queued or running")
    sweep.add_argument("--dry-run", action="store_true", help="print the batch scripts instead of submitting")
    sweep.add_argument("--check", action="store_true",
                       help="ask Slurm whether and when the jobs would start (sbatch --test-only), without submitting")
    sweep.add_argument("--max-parallel", type=positive_int, help=f"local runs at a time (default here: {default_parallelism()})")
    slurm = sweep.add_argument_group("Slurm (defaults read from the site: see `harness cluster`; a profile overrides them)")
    slurm_actions: list[argparse.Action] = []

    def slurm_option(*flags: str, **settings: Any) -> None:
        slurm_actions.append(slurm.add_argument(*flags, **settings))

    slurm_option("--profile", type=profile_name_or_path,
                 help="a packaged profile name (local, marwan) or a .toml path (default: none; "
                 "with --resume, the sweep's own settings)")
    slurm_option("--partition", help="GPU partition of the training tasks")
    slurm_option("--cpu-partition", help="CPU partition of the preprocessing job")
    slurm_option("--gres", help="the GPUs' GRES: gpu or gpu:TYPE (a node's count is its ranks of the run)")
    slurm_option("--gpu-type", help="GPU type in --gres=gpu:TYPE")
    slurm_option("--time", help="time limit of a training task, as sbatch reads it: MIN, HH:MM:SS, D-HH:MM, ...")
    slurm_option("--mem", help="memory of a training task, as sbatch reads it: 8000 (MB), 16G, ...")
    slurm_option("--cpus-per-task", type=positive_int)
    slurm_option("--array-parallelism", type=positive_int, help="training tasks running at once")
    slurm_option("--account")
    slurm_option("--qos")
    slurm_option("--constraint", help="node features, as sbatch --constraint")
    slurm_option("--exclude", help="nodes to avoid, as sbatch --exclude")
    slurm_option("--reservation")
    slurm_option("--sbatch", action="append", default=[], metavar="KEY=VALUE",
                 help="any other sbatch option (repeatable), e.g. --sbatch mail-type=END")
    sweep.set_defaults(func=cmd_sweep, planning_defaults={name: sweep.get_default(name) for name in planning},
                       slurm_options={action.dest: action.option_strings[0] for action in slurm_actions})


def profile_from_options(args: argparse.Namespace, base: Any) -> Any:
    """The profile with the options given on the command line in place of its values."""
    from harness.cluster.sbatch import check_slurm_name, format_gres, parse_gres, parse_sbatch_extra

    gres = args.gres
    if gres is not None and parse_gres(gres)[1] > 1:
        raise UserError(f"--gres {gres}: a run has one GPU per rank, and --gpus-per-run sets the ranks; give gpu or gpu:TYPE")
    if args.gpu_type is not None:  # refused as --gpu-type, not as the --gres it becomes
        check_slurm_name("--gpu-type", args.gpu_type)
        gres = format_gres(args.gpu_type)
    extra = dict(base.sbatch) | parse_sbatch_extra(args.sbatch) if args.sbatch else None
    return base.override(cpu_partition=args.cpu_partition, gpu_partition=args.partition, gres=gres, time=args.time,
                         mem=args.mem, cpus_per_task=args.cpus_per_task, account=args.account, qos=args.qos,
                         array_parallelism=args.array_parallelism, constraint=args.constraint, exclude=args.exclude,
                         reservation=args.reservation, sbatch=extra)


def sweep_request(args: argparse.Namespace) -> Any:
    """The planning options as a SweepRequest (every training option by its TrainConfig name)."""
    from harness import sweeps
    from harness.training.config import TRAIN_OPTIONS, train_options

    train = train_options(**{name: getattr(args, name) for name in TRAIN_OPTIONS if name in vars(args)})
    return sweeps.SweepRequest(dataset=args.dataset, models=sweeps.parse_models(args.models), seeds=args.seeds,
                               train=train, results=args.results, name=args.name, cross_generator=args.cross_generator,
                               ablate_preprocessing=args.ablate_preprocessing, scaling=args.scaling)


def cmd_sweep(args: argparse.Namespace) -> int:
    if args.force and not args.resume:
        raise UserError("--force resubmits the live runs of a sweep: it goes with --resume SWEEP")
    if args.dry_run and args.check:
        raise UserError("--dry-run prints the batch scripts and --check asks Slurm about them: give one")
    return resume_sweep(args) if args.resume else new_sweep(args)


def scheduler_options(args: argparse.Namespace) -> bool:
    """Whether the options name a scheduler's settings (a partition, a profile): --cluster auto picks one."""
    return bool(args.partition or args.cpu_partition or args.profile)


def refuse_unused_slurm_options(args: argparse.Namespace, backend: Any) -> None:
    """Slurm's options on a sweep that does not go to Slurm would be ignored: refused instead."""
    given = [flag for dest, flag in args.slurm_options.items() if getattr(args, dest) not in (None, [])]
    if given and not backend.scheduler:
        raise UserError(f"{given[0]} is a Slurm option, but the sweep runs on --cluster {backend.name}: drop it, "
                        "or use --cluster slurm")


def new_sweep(args: argparse.Namespace) -> int:
    from harness import sweeps
    from harness.cluster import chosen_backend, get_backend
    from harness.cluster.profiles import Profile, load_profile

    profile = profile_from_options(args, load_profile(args.profile) if args.profile else Profile())
    cluster = chosen_backend(args.cluster, scheduler_options(args))
    backend = get_backend(cluster, max_parallel=args.max_parallel)
    refuse_unused_slurm_options(args, backend)  # after profile_from_options: a bad value is named as such first
    request = sweep_request(args)
    profile = backend.resolve(profile)  # the site's settings where the profile and the options set none
    sweep, spec = sweeps.plan(request, {"executor": cluster, **profile.to_json()})
    run_ids = [r.run_id for r in spec.runs]
    if args.dry_run or args.check:
        return show_submission(args, backend, sweep, profile, sweeps.placements(spec, run_ids))
    return submitted(args, sweep, cluster, run_ids, sweeps.start(sweep, spec, backend, profile))


def resume_sweep(args: argparse.Namespace) -> int:
    from harness import sweeps
    from harness.cli.render import err
    from harness.cli.track import watch
    from harness.cluster import chosen_backend, get_backend
    from harness.cluster.profiles import load_profile
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
    stored_cluster, stored_profile = sweeps.resume_settings(spec, sweep)
    cluster = chosen_backend(args.cluster, scheduler_options(args), recorded=stored_cluster)
    profile = profile_from_options(args, load_profile(args.profile) if args.profile else stored_profile)
    backend = get_backend(cluster, max_parallel=args.max_parallel)
    refuse_unused_slurm_options(args, backend)  # after profile_from_options: a bad value is named as such first
    sweeps.check_resumable(sweep, spec)
    run_ids, alive = sweeps.runs_to_resume(sweep, force=args.force)
    for status in alive:
        err.print(f"{status.run_id} is {status.state} (job {status.job_id}): not resubmitted (--force to)", markup=False)
    if not run_ids:
        err.print(f"sweep {spec.sweep_id}: no run to resubmit")
        print(spec.sweep_id, flush=True)
        return watch(sweep, args.interval) if args.wait else 0
    profile = backend.resolve(profile)
    runs = sweeps.placements(spec, run_ids)
    if args.dry_run or args.check:
        return show_submission(args, backend, sweep, profile, runs)
    backend.preflight(profile, runs, sweeps.run_devices(spec))
    sweeps.set_aside_records(sweep, run_ids)
    return submitted(args, sweep, cluster, run_ids, sweeps.submit(sweep, backend, profile, runs))


def show_submission(args: argparse.Namespace, backend: Any, sweep: Any, profile: Any, runs: dict[str, Any]) -> int:
    """--dry-run: the batch scripts; --check: the scheduler's word on them (exit 1 when a job would not run)."""
    if args.dry_run:
        for script in backend.scripts(sweep, profile, runs):
            print(script)
        return 0
    answers = backend.check(sweep, profile, runs)
    for answer in answers:
        print(answer)
    return 0 if all(a.startswith("ok") for a in answers) else 1


def submitted(args: argparse.Namespace, sweep: Any, cluster: str, run_ids: list[str], submission: Any) -> int:
    """Say what was queued, print the sweep id (stdout, for scripts), and follow it with --wait."""
    from harness.cli.render import err
    from harness.cli.track import watch

    err.print(f"sweep {sweep.sweep_id}: {len(run_ids)} runs on {cluster} ({sweep.folder})")
    if submission.preprocess_job:
        err.print(f"preprocessing job {submission.preprocess_job}; training job ids: {', '.join(sorted(set(submission.tasks.values())))}")
    print(sweep.sweep_id, flush=True)
    return watch(sweep, args.interval) if args.wait else 0
