"""How each architecture's training throughput scales with its ranks (a sweep with --scaling, or any sweep
whose runs differ in --gpus-per-run): weak scaling, the batch per rank fixed, against the same sweep's
run on one rank; and NVIDIA's published figures beside ours where the GPU and the precision match.

Speedup at N ranks is, seed by seed, the run's images/s over the same seed's images/s on one rank; the
row holds the mean over seeds and its Student-t interval (None below two seeds). Efficiency is the
speedup over N. Plain Python, as the leaderboard it extends.
"""
import csv
import fnmatch
from pathlib import Path
from typing import Any

from harness.stats.intervals import mean_interval
from harness.store.records import RunRecord

# NVIDIA DeepLearningExamples, PyTorch/Classification/ConvNets/resnet50v1.5/README.md, "Training performance
# results" (pytorch-21.03 NGC container, 224 px): images/s on 1 and 8 GPUs of a DGX, and the speedup NVIDIA
# prints (its "Strong Scaling" column, at a fixed batch per GPU). The printed speedups are kept: they differ
# from the ratios of the printed images/s by up to 0.02.
DLE_TABLE = Path(__file__).resolve().parent.parent / "resources" / "dle_scaling.csv"
DLE_SOURCE = "NVIDIA DeepLearningExamples ResNet50 v1.5 (PyTorch), DGX training throughput, 1 and 8 GPUs"


def ranks_of(record: RunRecord) -> int:
    return int((record.distributed or {}).get("world_size") or record.config.get("world_size") or 1)


def _rate(record: RunRecord) -> float | None:
    return (record.throughput or {}).get("train_images_per_s")


def scaling_rows(records_of: dict[str, list[RunRecord]]) -> list[dict[str, Any]]:
    """Per architecture and rank count, where an architecture ran on one rank and on more: its images/s,
    speedup and efficiency against one rank (each with its interval over seeds), and why not, where not."""
    by_architecture: dict[str, dict[int, list[RunRecord]]] = {}
    for records in records_of.values():
        for record in records:
            by_architecture.setdefault(record.model, {}).setdefault(ranks_of(record), []).append(record)
    rows = []
    for architecture, sizes in by_architecture.items():
        if len(sizes) < 2 or 1 not in sizes:
            continue
        alone = {r.seed: r for r in sizes[1]}
        for ranks in sorted(sizes):
            runs = sizes[ranks]
            pairs = [(r, alone[r.seed]) for r in runs if r.seed in alone]
            # a speedup compares one GPU model with itself: a baseline timed on another is no baseline
            other = [(_gpu(r), _gpu(base)) for r, base in pairs if _gpu(r) != _gpu(base)]
            speedups = [rate / base for r, b in pairs if _gpu(r) == _gpu(b) and (rate := _rate(r)) and (base := _rate(b))]
            speedup, low, high = mean_interval(speedups, bounds=(0.0, None))
            rate = mean_interval([_rate(r) for r in runs], bounds=(0.0, None))[0]
            nodes = max(int((r.distributed or {}).get("nodes") or 1) for r in runs)
            reason = (f"the one-rank baseline ran on {other[0][1]}, these {ranks} ranks on {other[0][0]}: no speedup "
                      "across GPU models" if other and not speedups else
                      "no seed timed on both one rank and this many" if not speedups else
                      "1 seed timed at both sizes: an interval over seeds needs 2" if len(speedups) == 1 else None)
            if ranks == 1 and speedups:  # each seed against itself: 1 by definition, no interval to give
                low, high, reason = None, None, "the baseline: one rank against itself"
            rows.append({"architecture": architecture, "ranks": ranks, "nodes": nodes, "seeds": len(speedups),
                         "train_images_per_s": rate, "speedup": speedup, "speedup_lo": low, "speedup_hi": high,
                         "efficiency": None if speedup is None else speedup / ranks,
                         "efficiency_lo": None if low is None else low / ranks,
                         "efficiency_hi": None if high is None else high / ranks,
                         "interval_reason": reason, "speedup_reason": reason if speedup is None else None,
                         **_setting(runs[0])})
    return rows


def _gpu(record: RunRecord) -> str | None:
    return _setting(record)["gpu_name"]


def _setting(record: RunRecord) -> dict[str, Any]:
    """What a published figure must match: the GPU's name, and the numerics as NVIDIA names them (amp,
    tf32, fp32; bf16 has no published figure)."""
    config, env = record.config, record.environment or {}
    precision = {"fp16": "amp", "bf16": "bf16"}.get(config.get("precision", "fp32"), "tf32" if config.get("tf32") else "fp32")
    return {"gpu_name": env.get("device_name") if env.get("device") == "cuda" else None, "numerics": precision}


def dle_table() -> list[dict[str, Any]]:
    with open(DLE_TABLE, newline="") as handle:
        return [{**row, "gpus": int(row["gpus"]), "images_per_s": float(row["images_per_s"]), "speedup": float(row["speedup"])}
                for row in csv.DictReader(handle)]


def with_dle(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """rows with NVIDIA's published speedup and efficiency at the same rank count (dle_speedup,
    dle_efficiency), where the architecture, the GPU and the precision match; dle_reason otherwise."""
    table = dle_table()
    out = []
    for row in rows:
        gpu, numerics = row["gpu_name"], row["numerics"]
        same = [t for t in table if t["architecture"] == row["architecture"] and t["precision"] == numerics
                and gpu and fnmatch.fnmatchcase(gpu, t["gpu_pattern"])]
        rates = {t["gpus"]: t["speedup"] for t in same}
        published = rates.get(row["ranks"])
        reason = None if published is not None else (
            "no GPU in use" if not gpu else
            f"NVIDIA publishes {row['architecture']} on {gpu} in {numerics} at {', '.join(map(str, sorted(rates)))} GPUs"
            if rates else f"NVIDIA publishes no {row['architecture']} figure for {gpu} in {numerics}")
        out.append({**row, "dle_speedup": published,
                    "dle_efficiency": None if published is None else published / row["ranks"],
                    "dle_gpu": same[0]["gpu"] if same else None, "dle_reason": reason})
    return out


SCALING_COLUMNS = ("speedup", "speedup_lo", "speedup_hi", "efficiency", "efficiency_lo", "efficiency_hi", "speedup_reason",
                   "gpu_name", "numerics")


def add_scaling(rows: list[dict[str, Any]], records_of: dict[str, list[RunRecord]]) -> None:
    """Each leaderboard row (an architecture at one rank count) with its ranks and its scaling_rows
    figures (speedup, efficiency and their intervals); rows untouched where no architecture ran at two
    rank counts."""
    scaling = {(row["architecture"], row["ranks"]): row for row in scaling_rows(records_of)}
    if not scaling:
        return
    for row in rows:
        records = records_of.get(row["model"]) or []
        found = scaling.get((row["architecture"], ranks_of(records[0]))) if records else None
        row["ranks"] = found["ranks"] if found else None
        for name in SCALING_COLUMNS:
            row[name] = found[name] if found else None
