"""`predict`: the probability that each image is fake, by one trained run, preprocessed as in training.
torch is imported only when a prediction is made."""
import math
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError
from harness.store.paths import RunPaths, SweepPaths, find_sweep
from harness.store.records import RunRecord, read_spec, record_or_damage
from harness.store.regular import check_regular
from harness.store.schema import DamagedFile


@dataclass(frozen=True)
class TrainedRun:
    sweep: SweepPaths
    paths: RunPaths
    record: RunRecord


def find_run(results: Path, reference: str) -> TrainedRun:
    """'SWEEP/ARCH' (its first completed seed) or 'SWEEP/RUN-ID' -> the run and its record."""
    sweep_ref, _, run_ref = reference.rpartition("/")
    if not sweep_ref or not run_ref:
        raise UserError(f"--run takes SWEEP/ARCH or SWEEP/RUN-ID, not {reference!r}")
    sweep = find_sweep(results, sweep_ref)
    spec = read_spec(sweep)
    runs = [r for r in spec.runs if run_ref in (r.model, r.run_id)]
    if not runs:
        raise UserError(f"sweep {sweep.sweep_id} has no run {run_ref!r}; its runs: {', '.join(r.run_id for r in spec.runs)}")
    damaged: DamagedFile | None = None
    for run in sorted(runs, key=lambda r: r.seed):
        paths = sweep.run(run.run_id)
        record = record_or_damage(paths)
        if isinstance(record, DamagedFile):
            damaged = damaged or record
        elif record is not None and record.completed:
            return TrainedRun(sweep, paths, record)
    if damaged:  # say why rather than "nothing trained"
        raise UserError(f"no completed run {run_ref!r} in sweep {sweep.sweep_id}: {damaged}; "
                        f"sweep --resume {sweep.sweep_id} reruns it")
    raise UserError(f"no completed run {run_ref!r} in sweep {sweep.sweep_id}: nothing trained to predict with")


def predict(run: TrainedRun, images: list[Path]) -> list[tuple[str, float | None, str]]:
    """(path, probability of fake or None, reason when None) per image."""
    import torch

    from harness.data.cache import resize_image
    from harness.data.images import UndecodableImage, decode
    from harness.zoo.models import build_model
    from harness.zoo.preprocessing import Preprocessing

    stored = run.record.preprocessing or {}
    try:
        pre = Preprocessing(**{**stored, "mean": tuple(stored["mean"]), "std": tuple(stored["std"])})
    except (TypeError, KeyError, ValueError) as err:
        raise DamagedFile(run.paths.result, f"its preprocessing cannot be used ({type(err).__name__}: {err})") from None
    try:  # the weights first: a damaged file is found before the model is built
        check_regular(run.paths.best)
        state = torch.load(run.paths.best, map_location="cpu", weights_only=True)
        model = build_model(run.record.model)
        model.load_state_dict(state)
    except Exception as err:  # any way a checkpoint can be damaged: zip, pickle (refused globals), I/O, shapes, types
        first = (str(err).strip().splitlines() or [""])[0]
        if "weights_only" in first:  # torch's advice to load it unsafely: never taken here, so never passed on
            first = "no checkpoint of weights alone, as torch.load(weights_only=True) reads one"
        raise UserError(f"the trained weights of {run.sweep.sweep_id}/{run.paths.run_id} ({run.paths.best}) cannot be read "
                        f"({type(err).__name__}: {first:.200}): rerun it with sweep --resume {run.sweep.sweep_id}") from None
    model.eval()
    out: list[tuple[str, float | None, str]] = []
    for path in images:
        try:
            pixels = resize_image(decode(Path(path))[0], pre.resize_key)
        except (UndecodableImage, OSError, ValueError) as err:  # ValueError: a path holding a NUL
            out.append((str(path), None, getattr(err, "strerror", None) or str(err) or type(err).__name__))
            continue
        with torch.no_grad():
            x = pre.normalise(torch.tensor(pixels)[None])
            p_fake = float(torch.sigmoid(model(x))[0])
        if math.isfinite(p_fake):
            out.append((str(path), p_fake, ""))
        else:  # NaN weights in best.pt: no verdict, rather than "real" from a comparison with NaN
            out.append((str(path), None, f"the network gave {p_fake} (its weights in {run.paths.best} are not finite)"))
    return out
