"""The sweep as a whole, as MLPerf HPC's throughput metric counts a workload: its makespan (first job's
start to last job's end), each job's wait in the queue, and the GPU-hours its jobs held against what
the makespan offered (makespan x the most GPUs it held at once). From the scheduler's accounting
(sacct); None where the sweep's backend keeps none (the local one). Plain Python."""
import re
from datetime import datetime
from statistics import median
from typing import Any

from harness.analysis.load import SweepResults
from harness.cluster.base import JobState

_ELAPSED = re.compile(r"(?:(?P<days>[0-9]+)-)?(?:(?P<hours>[0-9]+):)?(?P<minutes>[0-9]+):(?P<seconds>[0-9]+(?:\.[0-9]*)?)")
_GPUS = re.compile(r"(?:^|,)gres/gpu=(?P<count>[0-9]+)(?:,|$)")


def elapsed_seconds(text: str) -> float | None:
    """sacct's Elapsed, [D-][HH:]MM:SS, in seconds; None where it is not one."""
    found = _ELAPSED.fullmatch(text.strip()) if text else None
    if not found:
        return None
    return (int(found["days"] or 0) * 86400 + int(found["hours"] or 0) * 3600 + int(found["minutes"]) * 60
            + float(found["seconds"]))


def allocated_gpus(alloc_tres: str) -> int | None:
    """The GPUs in sacct's AllocTRES (`cpu=2,gres/gpu=1,mem=3G`); None where it names none."""
    found = _GPUS.search(alloc_tres or "")
    return int(found["count"]) if found else None


def _when(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:  # "Unknown", "None": not started or not ended
        return None


def peak_gpus(spans: list[tuple[datetime, datetime, int]]) -> int:
    """The most GPUs held at one moment by jobs holding `gpus` from start to end (an end frees its GPUs
    before a start at the same moment takes them)."""
    events = sorted([(start, 1, gpus) for start, _, gpus in spans] + [(end, 0, -gpus) for _, end, gpus in spans])
    held = most = 0
    for _, _, change in events:
        held += change
        most = max(most, held)
    return most


def sweep_span(results: SweepResults) -> dict[str, Any] | None:
    """The sweep's makespan and what filled it, from its jobs that have started (so far, while some run);
    None where the scheduler keeps no times or no job has started."""
    if not results.backend.scheduler:
        return None
    try:
        states: dict[str, JobState] = results.job_states
    except Exception:  # sacct missing or failing: status and the report go on without the span
        return None
    starts = {job: when for job, s in states.items() if (when := _when(s.start)) is not None}
    if not starts:
        return None
    now = datetime.now()
    ends = {job: _when(states[job].end) or now for job in starts}
    first, last = min(starts.values()), max(ends.values())
    waits = {job: (start - queued).total_seconds() for job, start in starts.items() if (queued := _when(states[job].submit))}
    gpus = {job: allocated_gpus(states[job].alloc_tres) or 0 for job in starts}
    held = [(start, ends[job], gpus[job]) for job, start in starts.items() if gpus[job]]
    gpu_hours = sum((elapsed_seconds(states[job].elapsed) or 0.0) * gpus[job] / 3600 for job in starts)
    makespan = (last - first).total_seconds()
    most = peak_gpus(held)
    return {"makespan_s": makespan, "first_start": first.isoformat(), "last_end": last.isoformat(),
            "ended": all(s.final for s in states.values()), "jobs": len(starts),
            "queue_wait_median_s": median(waits.values()) if waits else None,
            "queue_wait_max_s": max(waits.values()) if waits else None, "queue_wait_s": waits,
            "gpu_hours": gpu_hours, "peak_gpus": most,
            "allocation_use": gpu_hours * 3600 / (makespan * most) if makespan > 0 and most else None}


def span_line(span: dict[str, Any]) -> str:
    """The span in one line: `makespan 0:12:34 (8 jobs; still running), queue wait median 3 s, max 41 s;
    1.20 GPU-hours of 1.68 offered (12.6 min x 8 GPUs at most at once): 71%`."""
    minutes, seconds = divmod(round(span["makespan_s"]), 60)
    clock = f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"
    line = f"makespan {clock} ({span['jobs']} jobs{'' if span['ended'] else '; so far, jobs still running'})"
    if span["queue_wait_median_s"] is not None:
        line += f", queue wait median {span['queue_wait_median_s']:.0f} s, max {span['queue_wait_max_s']:.0f} s"
    if span["allocation_use"] is not None:
        offered = span["makespan_s"] * span["peak_gpus"] / 3600
        line += (f"; {span['gpu_hours']:.2f} GPU-hours of {offered:.2f} offered ({span['makespan_s'] / 60:.1f} min x "
                 f"{span['peak_gpus']} GPUs at most at once): {100 * span['allocation_use']:.0f}%")
    return line
