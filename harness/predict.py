"""`predict`: the probability that each image is fake, by one trained run, preprocessed as in training."""
from pathlib import Path

import torch

from harness.data.cache import resize_center_crop
from harness.data.images import UndecodableImage, decode
from harness.errors import UserError
from harness.models import build_model
from harness.preprocessing import Preprocessing
from harness.results import find_sweep, read_result, read_sweep, run_dir


def find_run(results: Path, reference: str) -> Path:
    """'SWEEP/ARCH' (its first completed seed) or 'SWEEP/RUN-ID' -> the run's folder."""
    sweep_ref, _, run_ref = reference.rpartition("/")
    if not sweep_ref or not run_ref:
        raise UserError(f"--run takes SWEEP/ARCH or SWEEP/RUN-ID, not {reference!r}")
    sweep = find_sweep(results, sweep_ref)
    runs = [r for r in read_sweep(sweep)["runs"] if run_ref in (r["model"], r["run_id"])]
    if not runs:
        raise UserError(f"sweep {sweep.name} has no run {run_ref!r}; its runs: {', '.join(r['run_id'] for r in read_sweep(sweep)['runs'])}")
    for run in sorted(runs, key=lambda r: r["seed"]):
        if (read_result(sweep, run["run_id"]) or {}).get("status") == "COMPLETED":
            return run_dir(sweep, run["run_id"])
    raise UserError(f"no completed run {run_ref!r} in sweep {sweep.name}: nothing trained to predict with")


def predict(run: Path, images: list[Path]) -> list[tuple[str, float | None, str]]:
    """(path, probability of fake or None, reason when None) per image."""
    record = read_result(run.parent.parent, run.name)
    pre = Preprocessing(**{**record["preprocessing"], "mean": tuple(record["preprocessing"]["mean"]),
                           "std": tuple(record["preprocessing"]["std"])})
    model = build_model(record["model"])
    model.load_state_dict(torch.load(run / "best.pt", map_location="cpu", weights_only=True))
    model.eval()
    out = []
    for path in images:
        try:
            pixels = resize_center_crop(decode(Path(path))[0], pre.resize_key)
        except (UndecodableImage, FileNotFoundError, IsADirectoryError) as err:
            out.append((str(path), None, str(err) or type(err).__name__))
            continue
        with torch.no_grad():
            x = pre.normalise(torch.tensor(pixels)[None])
            out.append((str(path), float(torch.sigmoid(model(x))[0]), ""))
    return out
