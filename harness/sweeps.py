"""The use cases of a sweep: plan it, submit it, resume it, follow it, cancel it.

A sweep's spec (sweep.json) is written once, before any job starts; every job reads its orders from
it, so a job's pickle carries only the sweep folder and a run id. The command line parses options and
calls these; the cluster backends submit; the science runs in the jobs.
"""
import dataclasses
import errno
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness import jobs
from harness.analysis.load import SweepResults
from harness.analysis.status import RunStatus, is_final, sweep_status
from harness.cluster import check_backend_name, get_backend
from harness.cluster.base import ALIVE_STATES, Backend, Placement
from harness.data import DEMO, DEMO_IMAGE_SIZE, DEMO_ROBUSTNESS_IMAGES, DEMO_VERSION
from harness.errors import UserError
from harness.store.atomic import refuse_symlink
from harness.store.disk import remove_bytecode, tree_digest
from harness.store.paths import SweepPaths, cache_root, check_inside, check_sweep_name, is_run_id, list_sweeps
from harness.store.records import RunSpec, SweepSpec, read_completed, run_id, write_spec
from harness.store.schema import DamagedFile
from harness.store.submissions import Submission, record_submission
from harness.training.config import WEIGHTS_KEYWORDS, check_train_types, check_weights_file, config_for
from harness.version import __version__
from harness.zoo import ABLATION

PACKAGE = Path(__file__).resolve().parent  # the harness's source, copied into each sweep for its jobs

POLL_FIRST, POLL_MOST = 2.0, 60.0  # seconds between two looks at a sweep that --wait or --watch follows
MAX_SEEDS = 1_000  # runs per architecture: beyond any interval's need, and each is a job and a folder
Variant = tuple[str, dict[str, Any]]  # (name, training options it overrides)


@dataclass(frozen=True)
class SweepRequest:
    """What a user asks for: the runs (architectures x variants x seeds) and their training options."""

    dataset: str
    models: list[str]
    seeds: int
    train: dict[str, Any]
    results: Path
    name: str | None = None
    cross_generator: bool = False
    ablate_preprocessing: bool = False
    scaling: list[int] | None = None  # a scaling sweep: every architecture at each of these world sizes
    nodes: list[str] | None = None  # --every-node: every run once on each of these nodes, pinned to it
    batch_size_given: bool = False  # --batch-size given: on the demo, no architecture takes its own (ModelSpec.demo_batch_size)


def new_sweep_id(name: str | None) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    if name is None:
        return f"{stamp}-{secrets.token_hex(2)}"
    try:
        return check_sweep_name(name)
    except UserError as err:
        raise UserError(f"--name: {err}") from None


def check_results_path(path: Path) -> None:
    """A results folder's path lands in the batch scripts (#SBATCH --output=..., the PYTHONPATH line): a
    newline there would start a directive of its own, and no file name can hold a NUL."""
    text = str(path)
    if not any(c.isspace() or not c.isprintable() for c in text):  # (a NUL would fail resolve() itself)
        text = str(Path(path).resolve())
    if any(c.isspace() or not c.isprintable() for c in text):
        raise UserError(f"--results {str(path)!r}: the path lands in batch script lines, so it may not hold "
                        "spaces or control characters")


def demo_folder(results: Path) -> Path:
    return Path(results) / "datasets" / "demo-v{version}-{per_class}x{size}px-seed{seed}".format(version=DEMO_VERSION, **DEMO)


def generator_variants(dataset: Path) -> list[Variant]:
    """One variant per fake generator of the dataset: train on it, test on every generator."""
    from harness.data.manifest import read_manifest

    generators = sorted(set(read_manifest(dataset).query("label == 'fake'")["generator"]) - {""})
    if len(generators) < 2:
        raise UserError(f"--cross-generator needs fakes from two generators or more; {dataset} has {generators or 'none named'}")
    return [(g, {"train_generator": g}) for g in generators]


# --ablate-preprocessing (docs/science.md, "The paper's question"): each architecture's own input (timm), the
# input its Keras application expects (paper), and ResNet50's caffe input for all (the paper's probable one).
def preprocessing_variants(model: str, image_size: int | None = None) -> list[Variant]:
    """The ablation's variants for one architecture. Those that feed the network the same tensors run once,
    under the names joined by '-' (ResNet50's Keras mode is caffe: variant 'paper-caffe')."""
    from harness.zoo.lookup import preprocessing_for

    groups: list[tuple[list[str], Any]] = []
    for choice in ABLATION:
        preprocessing = preprocessing_for(model, choice, image_size)
        same = next((names for names, other in groups if other.same_input(preprocessing)), None)
        if same is None:
            groups.append(([choice], preprocessing))
        else:
            same.append(choice)
    return [("-".join(names), {"preprocessing": names[0]}) for names, _ in groups]


def scaling_variants(world_sizes: list[int], nodes: int) -> list[Variant]:
    """--scaling: one variant per world size ("x2": two ranks). The largest is spread over `nodes` nodes;
    that fixes the ranks a node holds, and each smaller size takes the nodes it needs (1 -> a node ->
    several): 1,2,4,8 on two nodes runs 1, 2 and 4 on one node and 8 on two."""
    per_node, remainder = divmod(max(world_sizes), nodes)
    if remainder or per_node == 0:
        raise UserError(f"--scaling {','.join(map(str, world_sizes))} --nodes-per-run {nodes}: the largest size must "
                        "fill the nodes evenly")
    return [(f"x{size}", {"world_size": size, "nodes": -(-size // per_node)}) for size in world_sizes]


def parse_models(text: str | None) -> list[str]:
    """'ResNet50,VGG16' -> validated names (all eight when the option is not given)."""
    from harness.zoo.lookup import spec_of
    from harness.zoo.registry import MODEL_NAMES

    if text is None:
        return list(MODEL_NAMES)
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UserError(f"--models {text!r} names no architecture; choose from {', '.join(MODEL_NAMES)}")
    networks: dict[str, str] = {}  # timm's name -> the name given: MobileNetV2 and mobilenetv2_100 are one network
    for name in names:
        first = networks.setdefault(spec_of(name).timm_name, name)
        if first != name or names.count(name) > 1:
            twice = f"{first} and {name} are the same network" if first != name else f"{name} is"
            raise UserError(f"--models {text!r:.200}: {twice} listed twice")
    return names


def demo_overrides(models: list[str], image_size: int | None, batch_size_given: bool) -> dict[str, dict[str, Any]]:
    """Per architecture, what it overrides on the demo: the nearest size it takes where DEMO_IMAGE_SIZE does not
    suit it (no size is given), its own batch where it has one and none is given (ModelSpec.demo_batch_size),
    and channels_last where its network is depthwise-separable (ModelSpec.separable):
    the demo is made for the first command, on a CPU, where that layout trains those networks faster (on any
    device it is recorded in the run's config and settings)."""
    from harness.zoo.lookup import spec_of
    from harness.zoo.registry import nearest_image_size

    overrides: dict[str, dict[str, Any]] = {}
    for model in models:
        spec = spec_of(model)
        size = nearest_image_size(spec, DEMO_IMAGE_SIZE)
        overrides[model] = {**({"image_size": size} if image_size is None and size != DEMO_IMAGE_SIZE else {}),
                            **({"batch_size": spec.demo_batch_size} if spec.demo_batch_size and not batch_size_given else {}),
                            **({"channels_last": True} if spec.separable else {})}
    return overrides


def demo_settings(request: SweepRequest, folder: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A sweep on the demo: its training settings (the demo's passes, its size where none is given) and what
    each architecture overrides; a demo still to be built needs its photographs' packages, refused now if not."""
    from harness.data.manifest import MANIFEST_NAME

    if not (folder / MANIFEST_NAME).is_file():
        from harness.data.photographs import photograph_folders

        photograph_folders()
    train = {**request.train, "robustness_images": DEMO_ROBUSTNESS_IMAGES}
    given = train.get("image_size")
    return {**train, "image_size": given or DEMO_IMAGE_SIZE}, demo_overrides(request.models, given, request.batch_size_given)


def pinned(runs: list[RunSpec], nodes: list[str]) -> list[RunSpec]:
    """--every-node: each run once on each node, pinned to it, the node last in its variant: its leaderboard
    row and its perflog series are the node's own (history follows a node over time)."""
    bad = next((node for node in nodes if not is_run_id(node)), None)
    if bad is not None:
        raise UserError(f"--every-node: node {bad!r:.60} is no plain name (letters, digits, '.', '_', '-'), which a run id needs")
    return [replace(run, run_id=run_id(run.model, run.seed, variant), variant=variant, node=node)
            for run in runs for node in nodes for variant in ["-".join(filter(None, [run.variant, node]))]]


def check_synthetic(request: SweepRequest) -> None:
    """--synthetic times random inputs: what needs a dataset is refused, in one line."""
    needs = [flag for flag, given in (("--dataset", request.dataset != "demo"), ("--cross-generator", request.cross_generator),
             ("--ablate-preprocessing", request.ablate_preprocessing), ("--resplit", request.train.get("resplit"))) if given]
    if needs:
        raise UserError(f"--synthetic times the training step and inference on random inputs, with no dataset: "
                        f"{needs[0]} needs one (drop it, or drop --synthetic)")


def plan(request: SweepRequest, cluster: dict[str, Any]) -> tuple[SweepPaths, SweepSpec]:
    """The sweep's folder and spec, every run's config checked; nothing is written. A sweep of synthetic
    inputs has no dataset (''), and each run's variant says so ('synthetic': its row, its references and its
    series are never those of runs on data)."""
    synthetic = bool(request.train.get("synthetic"))
    if synthetic:
        check_synthetic(request)
    kinds = [flag for flag, given in (("--cross-generator", request.cross_generator), ("--ablate-preprocessing",
             request.ablate_preprocessing), ("--scaling", request.scaling), ("--every-node", request.nodes)) if given]
    if len(kinds) > 1:
        raise UserError(f"{kinds[0]} and {kinds[1]} each make their own variants: use one per sweep")
    if request.nodes is not None and request.train.get("nodes", 1) != 1:
        raise UserError("--every-node pins each run to one node: --nodes-per-run spreads it over several; give one of them")
    if request.scaling and request.train.get("world_size", 1) != 1:
        raise UserError("--scaling sets each run's --gpus-per-run itself: give one of them")
    if not 1 <= request.seeds <= MAX_SEEDS:
        raise UserError(f"--seeds must be between 1 and {MAX_SEEDS}, got {request.seeds}")
    check_results_path(Path(request.results))
    sweep = SweepPaths.of(request.results, new_sweep_id(request.name))
    dataset = demo_folder(request.results) if request.dataset == "demo" else Path(request.dataset)
    if request.dataset != "demo" and not synthetic:
        from harness.data.manifest import check_manifest_files

        check_manifest_files(dataset)  # every row read and checked, every image there: before any job is queued
    train = request.train
    own: dict[str, dict[str, Any]] = {m: {} for m in request.models}  # what each architecture overrides (the demo's)
    if request.dataset == "demo" and not synthetic:
        train, own = demo_settings(request, dataset)
    shared = (generator_variants(dataset) if request.cross_generator else
              scaling_variants(request.scaling, train.get("nodes", 1)) if request.scaling else [("", {})])
    variants = {m: preprocessing_variants(m, own[m].get("image_size", train.get("image_size")))
                if request.ablate_preprocessing else shared for m in request.models}
    ranks = train.get("world_size", 1)
    if ranks > 1:  # the rank count in every row's name: a reference or a series at 1 rank is not one at N
        variants = {m: [(f"{name}-x{ranks}" if name else f"x{ranks}", overrides) for name, overrides in named]
                    for m, named in variants.items()}
    if synthetic:
        variants = {m: [("-".join(filter(None, ["synthetic", name])), overrides) for name, overrides in named]
                    for m, named in variants.items()}
    runs = [RunSpec(run_id(m, s, name), m, s, name, {**own[m], **overrides})
            for m in request.models for name, overrides in variants[m] for s in range(request.seeds)]
    if request.nodes is not None:
        runs = pinned(runs, request.nodes)
    spec = SweepSpec(sweep_id=sweep.sweep_id, created=datetime.now(timezone.utc).isoformat(),
                     dataset="" if synthetic else str(dataset.resolve()),
                     cache_root=str(cache_root(request.results).resolve()), models=request.models, seeds=request.seeds,
                     train=train, cluster=cluster, runs=runs)
    if request.train.get("weights") not in WEIGHTS_KEYWORDS:
        spec = replace(spec, train={**spec.train, "weights": str(check_weights_file(request.train["weights"]))})
    for config in {dataclasses.replace(config_for(spec, run), seed=0) for run in runs}:  # seeds do not change validity
        config.validate()
        config.check_workable()
    if request.train.get("weights") == "imagenet":  # compute nodes are offline: check the cache now, not at run time
        from harness.zoo.models import check_imagenet_weights
        check_imagenet_weights(request.models)
    return sweep, spec


def _check_writable(results: Path) -> None:
    _check_could_write(results)  # the same words as --dry-run's where they see it; the probe finds the rest
    try:
        Path(results).mkdir(parents=True, exist_ok=True)
        probe = Path(results) / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise UserError(f"cannot write the results folder {results}: {err.strerror}") from None


def _check_could_write(results: Path) -> None:
    """UserError where the results folder cannot be made or written, found without writing (--dry-run, --check,
    and a submission before its probe): it, or the nearest path above it that is there (a dangling link
    counts, as mkdir meets it), is a folder this process may write in."""
    place = Path(results).absolute()
    while not os.path.lexists(place) and place != place.parent:
        place = place.parent
    if not place.is_dir():
        raise UserError(f"cannot write the results folder {results}: {place} is not a folder")
    if not os.access(place, os.W_OK | os.X_OK):  # in the words the write would meet
        readonly = os.statvfs(place).f_flag & os.ST_RDONLY
        raise UserError(f"cannot write the results folder {results}: {os.strerror(errno.EROFS if readonly else errno.EACCES)}")


def _git_state() -> dict[str, Any]:
    """The checkout's commit and whether its tree was dirty (None where the source is not a git checkout)."""
    source = PACKAGE.parent
    try:
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        status = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--", "harness"], capture_output=True,
                                text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return {"git_commit": None, "git_dirty": None}
    if commit.returncode != 0:
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": commit.stdout.strip(), "git_dirty": bool(status.stdout.strip())}


def _snapshot_code(sweep: SweepPaths) -> dict[str, Any]:
    """Copy the harness's source into the sweep: the jobs import this copy, so editing the checkout
    while the sweep waits in the queue changes nothing."""
    source = PACKAGE
    shutil.copytree(source, sweep.code / "harness", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return {"snapshot": str(sweep.code), "harness_version": __version__, **_git_state(),
            "digest": tree_digest(sweep.code)}


def placements(spec: SweepSpec, run_ids: list[str]) -> dict[str, Placement]:
    """Where each run's ranks go (its nodes, and its ranks, one task each, per node; the node it is pinned
    to; whether it holds GPUs: not on --device cpu), in the order a pool takes the runs and an array numbers
    them: the largest input first, and among equal inputs the largest network (Table 2's parameters). A run's
    work grows with both, and the longest run, started last, would hold up the sweep's end (on the demo,
    Xception and InceptionV3 at their minimum sizes take the longest); ties keep the spec's order."""
    from harness.zoo.lookup import spec_of

    configs = {rid: config_for(spec, spec.run(rid)) for rid in run_ids}

    def work(rid: str) -> tuple[int, int]:
        model = spec_of(configs[rid].model)
        return configs[rid].image_size or model.keras_input_size or 0, model.paper_params or 0

    return {rid: Placement(configs[rid].nodes, configs[rid].world_size // configs[rid].nodes, spec.run(rid).node,
                           configs[rid].device != "cpu")
            for rid in sorted(run_ids, key=work, reverse=True)}


def run_devices(spec: SweepSpec) -> set[str]:
    """The --device of every run of the sweep."""
    return {config_for(spec, run).device for run in spec.runs}


def run_precisions(spec: SweepSpec) -> set[str]:
    """The arithmetic the sweep's runs ask of their device: each one's --precision, and tf32 with --tf32."""
    configs = [config_for(spec, run) for run in spec.runs]
    return {c.precision for c in configs} | ({"tf32"} if any(c.tf32 for c in configs) else set())


def preview(sweep: SweepPaths, spec: SweepSpec, backend: Backend, settings: Any, run_ids: list[str], ask: bool) -> list[str]:
    """What submitting these runs would run (--dry-run: the batch scripts), or the scheduler's word on it
    (ask: --check), after the refusals a submission meets; nothing is written."""
    runs = placements(spec, run_ids)
    backend.preflight(sweep, settings, runs, run_devices(spec), run_precisions(spec))
    _check_could_write(sweep.results)
    work = jobs.work(sweep.folder, spec.synthetic)
    return backend.check(sweep, settings, runs, work) if ask else backend.scripts(sweep, settings, runs, work)


def start(sweep: SweepPaths, spec: SweepSpec, backend: Backend, settings: Any) -> Submission:
    """Write the sweep (folder, spec, code snapshot) and submit every run."""
    runs = placements(spec, [r.run_id for r in spec.runs])
    backend.preflight(sweep, settings, runs, run_devices(spec), run_precisions(spec))  # refuses before anything is written
    _check_writable(sweep.results)
    if spec.dataset == str(demo_folder(sweep.results).resolve()):
        from harness.data.demo import ensure_demo

        ensure_demo(demo_folder(sweep.results), **DEMO)  # built once, under a lock, whole or not at all
    try:
        sweep.folder.mkdir()  # atomic: of two sweeps started at once under one name, one gets the folder
    except FileExistsError:
        raise UserError(f"a sweep named {sweep.sweep_id!r} already exists in {sweep.results}; pick another --name or --resume it") from None
    try:
        spec = replace(spec, code=_snapshot_code(sweep))
        write_spec(sweep, spec)
    except BaseException:  # a full disk, an interrupt: no folder without its sweep.json (neither new nor resumable)
        shutil.rmtree(sweep.folder, ignore_errors=True)
        raise
    return submit(sweep, backend, settings, runs, spec.synthetic)


def resubmit(sweep: SweepPaths, spec: SweepSpec, backend: Backend, settings: Any, run_ids: list[str]) -> Submission:
    """Submit these runs of a sweep again (--resume), their earlier records set aside; called with the sweep's
    jobs lock held since the runs were chosen (runs_to_resume), so that a second resume at once waits, then
    finds them queued."""
    runs = placements(spec, run_ids)
    backend.preflight(sweep, settings, runs, run_devices(spec), run_precisions(spec))
    set_aside_records(sweep, run_ids)
    return submit(sweep, backend, settings, runs, spec.synthetic, lock_held=True)


def submit(sweep: SweepPaths, backend: Backend, settings: Any, runs: dict[str, Placement], synthetic: bool,
           lock_held: bool = False) -> Submission:
    """Queue the runs (run id -> where its ranks go; synthetic: a sweep of synthetic inputs, which has no
    preprocessing step), recording every job in jobs.json as soon as it is queued: a submission that fails
    part-way leaves its queued part tracked (status, cancel), and --resume submits only the rest.
    lock_held: this process holds the sweep's jobs lock (record_submission)."""
    submission = Submission(backend.name, None, {})
    run_ids = list(runs)
    try:
        for submission in backend.submit(sweep, settings, runs, jobs.work(sweep.folder, synthetic)):
            record_submission(sweep, submission, lock_held)
    except UserError as err:
        if not (submission.preprocess_job or submission.tasks):
            raise
        sid = sweep.sweep_id
        raise UserError(f"{err}; {len(submission.tasks)} of {len(run_ids)} runs of sweep {sid} were queued before it: "
                        f"`python -m harness status {sid}` shows them, `python -m harness cancel {sid}` cancels them, "
                        f"`python -m harness sweep --resume {sid}` submits the rest") from None
    return submission


def runs_to_resume(sweep: SweepPaths, force: bool = False) -> tuple[list[str], list[RunStatus]]:
    """The runs without a completed result, less those whose job is still queued or running (unless force)."""
    statuses, _ = sweep_status(SweepResults(sweep))
    todo = [s for s in statuses if s.state != "COMPLETED" and (force or s.state not in ALIVE_STATES)]
    alive = [s for s in statuses if s.state in ALIVE_STATES and not force]
    return [s.run_id for s in todo], alive


def set_aside_records(sweep: SweepPaths, run_ids: list[str]) -> None:
    """A resubmitted run's earlier FAILED or damaged record is kept beside, not read as its result. A run
    that completed since it was chosen (a --force resume racing its job) keeps its record: the new job
    finds it and stops. The bytecode compiled into the code snapshot goes (check_snapshot checks the
    source, which the new jobs compile again)."""
    remove_bytecode(sweep.code)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    for rid in run_ids:
        result = sweep.run(rid).result
        if read_completed(sweep.run(rid)):
            continue
        if result.exists():
            result.replace(result.with_name(f"result.{stamp}.previous.json"))


def resume_settings(spec: SweepSpec, sweep: SweepPaths) -> tuple[str, dict[str, Any]]:
    """The backend and the settings the sweep was submitted with, and every run's training config, checked
    as if typed anew: sweep.json is as untrusted as the command line (an #SBATCH line hidden in its
    account, a string where a number goes). DamagedFile, naming the file and the setting, otherwise."""
    check_backend_name(spec.executor, sweep.spec, field="cluster.executor")
    stored = {k: v for k, v in spec.cluster.items() if k != "executor"}
    try:
        get_backend(spec.executor).settings({}, stored)
    except (TypeError, ValueError, UserError) as err:
        raise DamagedFile(sweep.spec, f"its cluster settings are not valid ({err})") from None
    for run in spec.runs:
        try:
            check_train_types(config_for(spec, run)).validate()
        except UserError as err:
            raise DamagedFile(sweep.spec, f"run {run.run_id}: {err}") from None
    return spec.executor, stored


def check_resumable(sweep: SweepPaths, spec: SweepSpec, trust_code: bool = False) -> None:
    """Before any record is set aside or any job submitted: what a resubmission writes (jobs.json, under
    its lock) is not a link planted elsewhere, and the sweep's code snapshot, which its jobs import,
    holds what this harness submits (a sweep planned by an older harness may not) and what was submitted
    (check_snapshot, unless trust_code)."""
    refuse_symlink(sweep.jobs)
    refuse_symlink(sweep.jobs_lock)
    for run in spec.runs:  # a run's files, its record set aside among them, and its local log
        check_inside(sweep.run(run.run_id).result, sweep.folder)
        check_inside(sweep.local_log(run.run_id), sweep.folder)
    check_inside(sweep.code, sweep.folder)
    module = sweep.code.joinpath(*jobs.MODULE.split(".")).with_suffix(".py")
    if sweep.code.is_dir() and not module.is_file():
        raise UserError(f"sweep {sweep.sweep_id} was planned by an older harness: its code snapshot has no "
                        f"{module.relative_to(sweep.code)}, which this harness's jobs run; start the sweep anew")
    if sweep.code.exists() and not trust_code:
        check_snapshot(sweep, spec)


def check_snapshot(sweep: SweepPaths, spec: SweepSpec) -> None:
    """The sweep's code/ holds what was submitted: its digest is the one sweep.json recorded then. Its jobs
    import that code, so a line planted there (a results folder a group writes) would run as whoever
    resumes; UserError otherwise, before anything is written."""
    recorded = spec.code.get("digest")
    if recorded is None:
        raise UserError(f"sweep {sweep.sweep_id} records no digest of its code snapshot {sweep.code} (an earlier harness "
                        "planned it), so what its jobs would run cannot be checked: --trust-code runs it as it is")
    if tree_digest(sweep.code) != recorded:
        raise UserError(f"sweep {sweep.sweep_id}'s code snapshot {sweep.code} is not what was submitted (its digest is "
                        "not the one sweep.json recorded): its jobs would run code changed since; --trust-code runs it "
                        "as it is, where you know who changed it")


def poll_interval(elapsed: float, interval: float | None, scheduler: bool) -> float:
    """Seconds until the next look at a sweep followed for elapsed seconds: interval where given; else,
    where a scheduler is asked (one sacct and one squeue a look, which sites rate-limit), a tenth of the
    time followed so far, from POLL_FIRST up to POLL_MOST (an ending is seen at most 10% late); else (this
    machine's own processes and files) POLL_FIRST."""
    if interval:
        return interval
    return min(POLL_MOST, max(POLL_FIRST, elapsed / 10)) if scheduler else POLL_FIRST


def statuses_until_final(sweep: SweepPaths, interval: float | None = None) -> Iterator[tuple[list[RunStatus], dict[str, Any]]]:
    """The sweep's status, again and again (poll_interval apart), until every run is final (the last one
    yielded is final)."""
    import time

    started = time.monotonic()
    while True:
        results = SweepResults(sweep)
        statuses, preprocess = sweep_status(results)
        yield statuses, preprocess
        if all(is_final(s) for s in statuses):
            return
        time.sleep(poll_interval(time.monotonic() - started, interval, results.backend.scheduler))


def _chosen_runs(results: SweepResults, runs: list[str]) -> list[str]:
    """The run ids that names (run ids or architectures) choose, in the spec's order; none named is refused
    (an empty `--runs "$RUNS"` must not mean every run)."""
    known = [r.run_id for r in results.spec.runs]
    if not runs:
        raise UserError(f"--runs names no run; sweep {results.sweep.sweep_id}'s runs: {', '.join(known)} (leave --runs out "
                        "to cancel every run)")
    unknown = [name for name in runs if not any(name in (r.run_id, r.model) for r in results.spec.runs)]
    if unknown:
        raise UserError(f"sweep {results.sweep.sweep_id} has no run {unknown[0]!r}; its runs: {', '.join(known)}")
    return [r.run_id for r in results.spec.runs if r.run_id in runs or r.model in runs]


def cancel(sweep: SweepPaths, runs: list[str] | None = None) -> list[str]:
    """Cancel the sweep's runs that have not ended (only the named runs, when given); returns their ids.

    Each gets a CANCELLED record first (on every backend: status says so, no local worker takes the run,
    and --resume reruns it), then its jobs are stopped, in every submission that holds it (an earlier job
    that a --resume --force left running may be the one that trains it), each by its own backend: only the
    named runs' jobs, or every job of the sweep, its preprocessing steps among them. A run going on has no
    record (a resubmitted run's earlier one is set aside), so one that has by then (it completed or failed
    since its state was read) keeps it, and is not cancelled."""
    from harness.store.records import write_record
    from harness.training.record import failed_record

    results = SweepResults(sweep)
    chosen = [r.run_id for r in results.spec.runs] if runs is None else _chosen_runs(results, runs)
    if not results.submissions:
        return []
    ended = {s.run_id for s in sweep_status(results)[0] if is_final(s)}
    going = [rid for rid in chosen if rid in results.latest and rid not in ended]

    def jobs(submission: Submission, rids: list[str]) -> dict[str, str]:
        return {rid: submission.tasks[rid] for rid in rids if rid in submission.tasks}

    held: dict[str, set[str]] = {}  # each backend's jobs that hold a run going on
    for submission in results.submissions:
        held.setdefault(submission.executor, set()).update(jobs(submission, going).values())
    for executor, job_ids in held.items():
        get_backend(executor).check_may_cancel(sweep, sorted(job_ids))
    live = []
    for rid in going:
        config = config_for(results.spec, results.spec.run(rid))
        record = failed_record(results.spec.sweep_id, rid, config, "cancelled by `harness cancel`", status="CANCELLED")
        if write_record(sweep.run(rid), record, replace=False):  # not over a record the run wrote since
            live.append(rid)
    for submission in results.submissions if live else []:
        backend, taken = get_backend(submission.executor), jobs(submission, live)
        if runs is not None:
            backend.cancel_runs(sweep, taken)
        else:
            backend.cancel(sweep, sorted(set(taken.values())) + ([submission.preprocess_job] if submission.preprocess_job else []))
    return live


def clean(sweep: SweepPaths, results: Path, cache: bool = False) -> tuple[str, int]:
    """Free what a finished sweep of the results folder no longer needs: its completed runs' resume
    checkpoints, or (cache) the image caches of the folder, which every sweep there shares and rebuilds
    when it needs them. Only what the harness wrote, inside results (UserError before anything is removed
    otherwise). Returns what was removed, in words, and the bytes freed."""
    from harness.store.disk import cache_entries, completed_checkpoints, remove

    if sweep.folder.is_symlink() or sweep.folder.parent.resolve() != Path(results).resolve():
        raise UserError(f"sweep {sweep.folder} is not a folder of the results folder {results}: clean removes files only "
                        "inside --results (give --results the folder that holds the sweep)")
    if not cache:
        checkpoints = completed_checkpoints(sweep)
        return f"{len(checkpoints)} resume checkpoints of sweep {sweep.sweep_id}'s completed runs", remove(checkpoints)
    for other in list_sweeps(results):
        going = [s.run_id for s in sweep_status(SweepResults(other))[0] if not is_final(s)]
        if going:
            raise UserError(f"sweep {other.sweep_id} still has runs to go ({', '.join(going[:3])}{', ...' if len(going) > 3 else ''}), "
                            "which read the caches: clean --cache once they end, or cancel them")
    caches = cache_root(results)
    freed = remove(cache_entries(results))
    if caches.is_dir() and not any(caches.iterdir()):
        caches.rmdir()
    return f"the image caches of {results} ({caches.name}/; rebuilt when a sweep needs them)", freed


def log_path(sweep: SweepPaths, run: str, stream: str = "out") -> Path:
    """The log of the job that stands for a run now (SweepResults.current_job: its latest, or an earlier one
    that still holds it), as its backend names it (the run named by its id or architecture)."""
    results = SweepResults(sweep)
    rid = _chosen_runs(results, [run])[0]
    if rid not in results.latest:
        raise UserError(f"run {rid} of sweep {sweep.sweep_id} was never submitted: it has no log")
    submission, _ = results.current_job(rid)
    return results.backend_for(submission).log_path(sweep, rid, submission, stream)


LOG_CHUNK_BYTES = 1 << 20  # a log is read and shown this much at a time


def read_log(sweep: SweepPaths, run: str, stream: str = "out", follow: bool = False) -> Iterator[str]:
    """The log of the job that stands for a run (log_path), a chunk at a time; with follow, what is appended to it until
    the run has ended, and the log its job names next from its start (a local run's own log once a worker
    takes it, after its pool's preprocessing step's; a log begun again, as Slurm truncates it on a requeue).
    UserError where the log is no regular file (a FIFO would hang the reader, /dev/zero fill its memory)."""
    import codecs
    import time

    from harness.store.regular import Unreadable, read_regular

    rid = _chosen_runs(SweepResults(sweep), [run])[0]
    path = log_path(sweep, rid, stream)
    if not path.exists() and not follow:
        raise UserError(f"no log at {path} yet: the job has not started")
    offset, decoder = 0, codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character split by a chunk stays whole
    while True:
        ended = not follow or is_final(next(s for s in sweep_status(SweepResults(sweep))[0] if s.run_id == rid))  # then one read more
        named = log_path(sweep, rid, stream) if follow else path
        if named != path:
            yield decoder.decode(b"", final=True)
            path, offset = named, 0
            decoder.reset()
        while path.exists():
            if path.stat().st_size < offset:
                offset = 0
                decoder.reset()
            try:
                chunk = read_regular(path, LOG_CHUNK_BYTES, whole=False, offset=offset)
            except Unreadable as err:
                raise UserError(f"the log {path} {err}") from None
            if not chunk:
                break
            offset += len(chunk)
            yield decoder.decode(chunk)
        if ended:
            yield decoder.decode(b"", final=True)
            return
        time.sleep(1)
