"""The reading commands at the size a centre reaches, as whole processes (imports included): a perflog of
N lines (default 80,000) against one of 80, and a sweep of 10,000 runs against one of one.

    python benchmarks/perflog_scale.py [--lines 100000] [--layout sweeps|wide] [--rounds 3] [--source RESULTS]

The perflog is one real line (from a finished one-run sweep, made first unless --source names a results
folder holding one) copied with other sweep names, its times spread over two years and its runs over
four systems: 8 runs a sweep (--layout sweeps: N/8 sweeps of the paper's eight architectures) or 1,000
(--layout wide: N/1,000 sweeps of 125 seeds each). The 10,000-run sweep is sweep.json, jobs.json and
each run's record, history and test scores copied from the real run, without training.

Timed, each as the user types it: `history --model ResNet50 --format csv`, `check`, `compare`,
`harness.load(...).perflog` (in a `python -c`), `dashboard` on both perflogs; `status` and `leaderboard`
on both sweeps (`status` as a table and as JSON, to tell the table's drawing from the rest); the
index's first build (`history` on the big perflog without its index), the first check of the 10,000
records (a `status`, before the rounds; the checks are kept in a cache folder of the benchmark's own),
and a `history` after one line is appended to the big perflog. Rounds alternate the small and the large case of each
command, so that noise on a shared machine hits both alike; the table gives each one's median time and
the largest peak memory of its rounds (ru_maxrss of the child). Goals: history, check, compare and
load(...).perflog under 1 s and 300 MB on 100,000 lines; dashboard under 5 s; status and leaderboard on
10,000 runs under 0.3 s; the first build on 100,000 lines under 30 s.
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cli_latency import finished_sweep

from record import emit

PAPER_EIGHT = ["ResNet50", "VGG16", "VGG19", "InceptionV3", "Xception", "DenseNet121", "MobileNetV2", "NASNetMobile"]
WIDE_MODELS = PAPER_EIGHT + ["resnet18", "efficientnet_b0"]  # 10 x 1,000 seeds: the 10,000-run sweep
# The four systems the copies ran on, and the training throughput each gives (images/s) around which they vary.
SYSTEMS = [({"cluster": "marwan", "partition": "gpu", "node": "gpu01", "device": "cuda", "gpu_name": "Tesla P100-PCIE-16GB",
             "gpu_count": 1, "driver": "535.104.05", "cuda": "12.2"}, 410.0),
           ({"cluster": "marwan", "partition": "gpu2", "node": "gpu03", "device": "cuda", "gpu_name": "Tesla V100-SXM2-32GB",
             "gpu_count": 1, "driver": "550.54.15", "cuda": "12.4"}, 780.0),
           ({"cluster": "othersite", "partition": "a100", "node": "a100n1", "device": "cuda", "gpu_name": "NVIDIA A100-SXM4-80GB",
             "gpu_count": 1, "driver": "550.54.15", "cuda": "12.4"}, 1650.0),
           ({"cluster": "marwan", "partition": "compute", "node": "cpu01", "device": "cpu", "gpu_name": None, "gpu_count": 0,
             "driver": None}, 40.0)]
TWO_YEARS = timedelta(days=730)
SMALL_LINES = 80
WIDE_RUNS = 10_000
GOALS = {"history": (1.0, 300), "check": (1.0, 300), "compare": (1.0, 300), "load().perflog": (1.0, 300),
         "dashboard": (5.0, None), "status": (0.3, None), "status --format json": (0.3, None), "leaderboard": (0.3, None),
         "first build": (30.0, None)}
DEAD_WORKER = "4194305@1"  # a local pool's job id whose worker no longer runs (a pid above Linux's largest)


def perflog_lines(line: dict, count: int, per_sweep: int) -> "list[str]":
    """count copies of line: sweeps of per_sweep runs (the paper's eight, seeds after), two years apart from the
    first to the last, each sweep on one of the four systems, its throughput varying around the system's."""
    sweeps = -(-count // per_sweep)
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    noise = random.Random(0)
    lines = []
    for number in range(count):
        sweep, slot = divmod(number, per_sweep)
        system, speed = SYSTEMS[sweep % len(SYSTEMS)]
        model, seed = PAPER_EIGHT[slot % len(PAPER_EIGHT)], slot // len(PAPER_EIGHT)
        when = start + TWO_YEARS * sweep / max(1, sweeps - 1) + timedelta(minutes=slot)
        figures = {name: dict(figure) for name, figure in line["figures"].items()}
        figures["train_images_per_s"]["value"] = speed * noise.uniform(0.9, 1.1)
        figures["auc"]["value"] = noise.uniform(0.85, 0.99)
        if system["device"] == "cuda":
            figures["energy_per_image_j"]["value"] = 250 / speed * noise.uniform(0.9, 1.1)
        copy = {**line, "time": when.isoformat(), "sweep": f"s{sweep:06d}", "run": f"{model}-s{seed}",
                "architecture": model, "seed": seed, "system": {**line["system"], **system}, "figures": figures}
        lines.append(json.dumps(copy, separators=(",", ":")) + "\n")
    return lines


def write_perflog(results: Path, line: dict, count: int, per_sweep: int) -> None:
    with open(results / "perflog.jsonl", "w") as handle:
        handle.writelines(perflog_lines(line, count, per_sweep))


def copy_sweep(source: Path, target: Path) -> None:
    """A finished sweep under another name: its spec, jobs and records say the new one."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("code", "logs", "*.pt", "figures", "report.*"))
    for path in [target / "sweep.json", *target.glob("runs/*/result.json")]:
        data = json.loads(path.read_text())
        data["sweep_id"] = target.name
        path.write_text(json.dumps(data, indent=2))


def wide_sweep(source: Path, target: Path, runs: int = WIDE_RUNS) -> None:
    """A sweep of `runs` completed runs (10 architectures x runs/10 seeds), each run's record, history and test
    scores the source run's, its jobs one local pool that has ended; nothing trained."""
    spec = json.loads((source / "sweep.json").read_text())
    run_dir = next((source / "runs").iterdir())
    record = json.loads((run_dir / "result.json").read_text())
    seeds = runs // len(WIDE_MODELS)
    ids = [(model, seed, f"{model}-s{seed}") for model in WIDE_MODELS for seed in range(seeds)]
    spec.update(sweep_id=target.name, models=WIDE_MODELS, seeds=seeds,
                runs=[{"run_id": rid, "model": model, "seed": seed, "variant": "", "overrides": {}} for model, seed, rid in ids])
    target.mkdir(parents=True)
    (target / "sweep.json").write_text(json.dumps(spec, indent=2))
    (target / "jobs.json").write_text(json.dumps({"submissions": [{
        "executor": "local", "preprocess_job": None, "tasks": {rid: DEAD_WORKER for _, _, rid in ids},
        "submitted": spec["created"]}]}, indent=2))
    for model, seed, rid in ids:
        folder = target / "runs" / rid
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps({**record, "sweep_id": target.name, "run_id": rid, "model": model,
                                                        "seed": seed, "config": {**record["config"], "model": model, "seed": seed}},
                                                       indent=2))
        for other in run_dir.iterdir():  # history, test scores, progress, ...: the real run's (its weights aside)
            if other.is_file() and other.name != "result.json" and other.suffix != ".pt":
                os.link(other, folder / other.name)


@dataclass
class Case:
    name: str
    small: list[str]
    large: list[str]


@dataclass
class Timing:
    seconds: float
    cpu_seconds: float  # user + system: what the command itself used, less sensitive than the wall time to a loaded machine
    max_rss_mb: float


# Starts the command from a small process of its own and reports its wall time, CPU time, peak memory (KiB) and exit
# code: a child forked from this process (which imports torch) would carry this process's peak memory as its own.
LAUNCHER = """import json, os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(json.dumps([time.perf_counter() - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, os.waitstatus_to_exitcode(status)]))
"""


def timed(command: list[str], env: dict[str, str]) -> Timing:
    """A command as a whole process: its wall time, CPU time and own peak resident memory (wait4's rusage)."""
    done = subprocess.run([sys.executable, "-S", "-c", LAUNCHER, *command], capture_output=True, text=True, env=env)
    seconds, cpu, peak_kib, code = json.loads(done.stdout)
    if code not in (0, 1):  # check exits 1 where a figure is outside its reference
        raise SystemExit(f"{' '.join(command)} exited with {code}: {done.stderr[-500:]}")
    return Timing(seconds, cpu, peak_kib / 1024)


def run_rounds(cases: list[Case], rounds: int, env: dict[str, str]) -> dict[str, dict[str, list[Timing]]]:
    """Each round times every case small then large (or large then small, in turn), one after the other."""
    found: dict[str, dict[str, list[Timing]]] = {case.name: {"small": [], "large": []} for case in cases}
    for number in range(rounds):
        for case in cases:
            order = ("small", "large") if number % 2 == 0 else ("large", "small")
            for size in order:
                found[case.name][size].append(timed(getattr(case, size), env))
    return found


def summary(timings: list[Timing]) -> dict[str, float]:
    """The median wall and CPU time of the rounds, and the largest peak memory."""
    return {"s": round(statistics.median(t.seconds for t in timings), 3),
            "cpu_s": round(statistics.median(t.cpu_seconds for t in timings), 3),
            "mb": round(max(t.max_rss_mb for t in timings), 1)}


def print_table(rows: list[dict], lines: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"whole processes: {SMALL_LINES} perflog lines or a 1-run sweep (small) against {lines:,} lines or "
                        f"{WIDE_RUNS:,} runs (large); median wall time, median CPU time, largest peak memory")
    for column in ("command", "small s", "small cpu s", "small MB", "large s", "large cpu s", "large MB", "goal", "met"):
        table.add_column(column, justify="left" if column in ("command", "goal") else "right")
    for row in rows:
        cells = [f"{row[key]:.3f}" if isinstance(row[key], float) and not key.endswith("mb") else
                 f"{row[key]:.0f}" if row[key] is not None else "-"
                 for key in ("small_s", "small_cpu_s", "small_mb", "large_s", "large_cpu_s", "large_mb")]
        table.add_row(row["command"], *cells, row["goal"], "yes" if row["met"] else "NO")
    Console(width=200).print(table)


def goal_text(name: str) -> str:
    seconds, megabytes = GOALS[name]
    return f"< {seconds:g} s" + (f", < {megabytes} MB" if megabytes else "")


def met(name: str, timing: dict[str, float]) -> bool:
    seconds, megabytes = GOALS[name]
    return timing["s"] < seconds and (megabytes is None or timing["mb"] < megabytes)


def source_sweep(args: argparse.Namespace, tmp: Path) -> tuple[Path, str]:
    """A results folder holding a finished sweep whose perflog has its line, and that sweep's id."""
    if args.source:
        sweeps = [p for p in args.source.iterdir() if (p / "sweep.json").is_file()]
        return args.source, sweeps[0].name
    return finished_sweep(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=80_000, help="the large perflog's lines (default 80,000)")
    parser.add_argument("--layout", choices=["sweeps", "wide"], default="sweeps",
                        help="sweeps: 8 runs a sweep; wide: 1,000 runs a sweep")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--source", type=Path, help="a results folder with a finished sweep and its perflog line "
                        "(default: one is made, MobileNetV2 for one epoch on --cluster local)")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(dir="/var/tmp") as folder:
        tmp = Path(folder)
        source, sweep = source_sweep(args, tmp)
        line = json.loads((source / "perflog.jsonl").read_text().splitlines()[0])
        folders = {size: tmp / size for size in ("small", "large")}
        for size, results in folders.items():
            results.mkdir()
            copy_sweep(source / sweep, results / "a")
            copy_sweep(source / sweep, results / "b")
            write_perflog(results, line, SMALL_LINES if size == "small" else args.lines,
                          8 if args.layout == "sweeps" else 1_000)
        wide = {"small": source, "large": tmp / "wide"}
        wide_sweep(source / sweep, wide["large"] / "wide")
        references = tmp / "references.toml"
        harness = [sys.executable, "-m", "harness"]
        subprocess.run([*harness, "check", "a", "--references", str(references), "--update-references", "--results",
                        str(folders["small"])], check=True, capture_output=True)
        # the checks of the records kept in a cache folder of the benchmark's own: the first command checks them all
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "XDG_CACHE_HOME": str(tmp / "cache")}

        def on(size: str, *command: str) -> list[str]:
            return [*harness, *command, "--results", str(folders[size])]

        def load(size: str) -> list[str]:
            return [sys.executable, "-c", f"import harness; harness.load({str(folders[size])!r}, 'a').perflog"]

        first = [timed(on("large", "history", "--model", "ResNet50", "--format", "csv"), env)]
        first_check = timed([*harness, "status", "--format", "json", "--results", str(wide["large"])], env)
        cases = [Case("history", *(on(s, "history", "--model", "ResNet50", "--format", "csv") for s in ("small", "large"))),
                 Case("check", *(on(s, "check", "a", "--references", str(references)) for s in ("small", "large"))),
                 Case("compare", *(on(s, "compare", "a", "b") for s in ("small", "large"))),
                 Case("load().perflog", load("small"), load("large")),
                 Case("dashboard", *(on(s, "dashboard", "--out", str(tmp / f"{s}.html")) for s in ("small", "large"))),
                 Case("status", *([*harness, "status", "--results", str(wide[s])] for s in ("small", "large"))),
                 Case("status --format json", *([*harness, "status", "--format", "json", "--results", str(wide[s])]
                                                for s in ("small", "large"))),
                 Case("leaderboard", *([*harness, "leaderboard", "--results", str(wide[s])] for s in ("small", "large")))]
        found = run_rounds(cases, args.rounds, env)
        with open(folders["large"] / "perflog.jsonl", "a") as handle:
            handle.write(perflog_lines(line, 1, 8)[0].replace('"sweep":"s000000"', '"sweep":"appended"'))
        appended = timed(on("large", "history", "--model", "ResNet50", "--format", "csv"), env)
    rows = [{"command": name, **{f"{size}_{k}": v for size in ("small", "large") for k, v in summary(found[name][size]).items()},
             "goal": goal_text(name), "met": met(name, summary(found[name]["large"]))} for name in found]
    build = summary(first)
    rows.append({"command": "first build", "small_s": None, "small_cpu_s": None, "small_mb": None,
                 **{f"large_{k}": v for k, v in build.items()}, "goal": goal_text("first build"), "met": met("first build", build)})
    rows.append({"command": f"first check of {WIDE_RUNS:,} records", "small_s": None, "small_cpu_s": None, "small_mb": None,
                 **{f"large_{k}": v for k, v in summary([first_check]).items()}, "goal": "-", "met": True})
    print_table(rows, args.lines)
    print(f"history after one line appended to the large perflog (the index caught up): {appended.seconds:.3f} s; "
          f"load average {os.getloadavg()[0]:.1f} (this machine has {os.cpu_count()} CPUs)")
    emit("perflog_scale", {"lines": args.lines, "layout": args.layout, "rounds": args.rounds, "wide_runs": WIDE_RUNS,
                           "rows": rows, "history_after_one_line_s": round(appended.seconds, 3),
                           "load_average_start": load_start, "load_average_end": os.getloadavg()[0]})


if __name__ == "__main__":
    main()
