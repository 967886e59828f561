"""Every command that prints a table, as a terminal shows it: each run once as a process in a tmux pane 80
and 100 columns wide, on small sweeps written to disk, and read back from the screen. No cell is cut or
wrapped mid-word: every cell but prose stands whole on one line, a prose cell (a reason, a note, a source)
wraps at its spaces; every table ends at its right edge, inside the pane; a header reads whole; the columns
that make way are named under the table."""
import dataclasses
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.store.paths import SweepPaths
from harness.store.perflog import append_entry
from harness.store.records import RunSpec, SweepSpec, run_id, write_record, write_spec

from patience import HUNG_S
from perf_helpers import entry, make_sweep, record

pytestmark = pytest.mark.xdist_group("terminal")  # one worker builds the sweeps and runs the panes for every test here

EIGHT = ["ResNet50", "VGG16", "VGG19", "DenseNet121", "MobileNetV2", "Xception", "NASNetMobile", "InceptionV3"]
PAIR = ["NASNetMobile", "InceptionV3"]
WIDTHS = (80, 100)
DATA = Path(__file__).parent / "data"


def _sweeps(results: Path) -> None:
    """The eight, three seeds each (an interval over seeds needs three), one record cut short (leaderboard,
    status, check); two sweeps of two seeds for compare; a scaling sweep at one and two ranks (--compare dle)."""
    for name, speed, models, seeds in (("after", 120.0, EIGHT, 3), ("small-a", 100.0, PAIR, 2), ("small-b", 120.0, PAIR, 2)):
        make_sweep(results, name, [record(model, seed=seed, sweep=name, accuracy=0.80 + 0.01 * i + 0.004 * seed,
                                          train_ips=speed + seed + 1000 * i) for i, model in enumerate(models) for seed in range(seeds)])
    sweep, runs = SweepPaths.of(results, "scaling"), []
    sweep.folder.mkdir(parents=True)
    for model in ("ResNet50", "MobileNetV2"):
        for ranks in (1, 2):
            for seed in (0, 1):
                runs.append(RunSpec(run_id(model, seed, f"x{ranks}"), model, seed, f"x{ranks}", {"world_size": ranks}))
                made = record(model, seed=seed, sweep="scaling", train_ips=100.0 * ranks * (0.9 + 0.05 * seed),
                              run_id=runs[-1].run_id, distributed={"world_size": ranks, "nodes": 1})
                write_record(sweep.run(made.run_id), dataclasses.replace(made, config={**made.config, "world_size": ranks}))
    write_spec(sweep, SweepSpec(sweep_id="scaling", created="2026-01-03T03:00:00+00:00", dataset="/data", cache_root="/cache",
                                models=["ResNet50", "MobileNetV2"], seeds=2, train={}, cluster={"executor": "local"}, runs=runs,
                                code={"harness_version": "0.1.0", "git_commit": "abc123", "git_dirty": False}))
    (results / "after" / "runs" / "InceptionV3-s1" / "result.json").write_text('{"schema_version": 1, "sweep_id": "af')


def _perflog(results: Path) -> None:
    """history: two architectures on a P100 partition in two months, the driver upgraded between them."""
    system = {"cluster": "marwan", "partition": "p100", "gpu_name": "Tesla P100-PCIE-16GB", "gpu_count": 1,
              "driver": "535.104.05", "cuda": "12.2", "torch": "2.4.1", "git_commit": "3b19d62"}
    for month, sweep, driver in ((1, "jan", "535.104.05"), (2, "feb", "550.54.15")):
        for i, model in enumerate(PAIR):
            for seed in (0, 1):
                made = entry(f"{model}-s{seed}", 100.0 + 10 * i + month, sweep=sweep, time=f"2026-{month:02d}-01T0{seed}:00:00+00:00",
                             system={**system, "driver": driver})
                append_entry(results, dataclasses.replace(made, settings={**made.settings, "optimizer": "adam", "precision": "fp32",
                                                                          "lr": 0.001, "epochs": 5, "mode": "transfer"}))


def _trained(results: Path, inputs: Path) -> None:
    """predict: a MobileNetV2 run with its weights (an untrained network: predict reads any), a photograph
    and a folder named as one."""
    import torch
    from PIL import Image

    from harness.zoo.lookup import preprocessing_for
    from harness.zoo.models import build_model

    made = record("MobileNetV2", sweep="trained", preprocessing=dataclasses.asdict(preprocessing_for("MobileNetV2", "timm", 32)))
    sweep = make_sweep(results, "trained", [made])
    torch.save(build_model("MobileNetV2").state_dict(), sweep.run(made.run_id).best)
    (inputs / "album.png").mkdir(parents=True)
    Image.new("RGB", (40, 40), (200, 150, 120)).save(inputs / "face.png")


def _slurm(folder: Path) -> Path:
    """sinfo and scontrol answering as the local cluster did (tests/unit/data/harness-*.txt): this
    machine's Slurm is never asked."""
    folder.mkdir()
    (folder / "sinfo").write_text("#!/bin/sh\necho gpu; echo compute\n")
    (folder / "scontrol").write_text(f'#!/bin/sh\ncat "{DATA}/harness-$2.txt"\n')  # scontrol show partition|node|config
    for name in ("sinfo", "scontrol"):
        (folder / name).chmod(0o755)
    return folder


def _commands(root: Path) -> dict[str, tuple[str, ...]]:
    """Each table-printing command on the world under root, by name."""
    results = str(root / "results")
    references = root / "refs.toml"
    references.write_text("".join(f"[{model}]\naccuracy = {{ value = 0.85, lower = -0.05, upper = 0.05 }}\n" for model in EIGHT))
    return {"models": ("models",), "cluster": ("cluster",),
            "history": ("history", "--results", results),
            "compare": ("compare", "small-a", "small-b", "--results", results),
            "leaderboard": ("leaderboard", "after", "--results", results),
            "leaderboard-paper": ("leaderboard", "after", "--compare", "paper", "--results", results),
            "leaderboard-dle": ("leaderboard", "scaling", "--compare", "dle", "--results", results),
            "status": ("status", "after", "--results", results),
            "check": ("check", "after", "--references", str(references), "--results", results),
            "predict": ("predict", "--run", "trained/MobileNetV2", "face.png", "album.png", "missing.png", "--results", results)}


class Panes:
    """One tmux server (its own socket), one detached session per command and width; a pane stays once its
    command has exited, so that its screen (and the lines scrolled off it) can be read."""

    def __init__(self, tmux: str, folder: Path, env: dict[str, str]) -> None:
        self.command = [tmux, "-S", str(folder / "tmux.socket"), "-f", str(folder / "tmux.conf")]
        self.folder, self.config, self.env = folder, folder / "tmux.conf", env
        self.config.write_text("set -g remain-on-exit on\nset -g history-limit 5000\n")  # read where the server starts

    def tmux(self, *args: str) -> str:
        return subprocess.run([*self.command, *args], env=self.env, capture_output=True, text=True, check=True, timeout=HUNG_S).stdout

    def start(self, name: str, width: int, command: list[str], cwd: Path, path: str) -> None:
        """command in a pane width columns wide (and 50 lines high), in cwd, with PATH path; its exit status
        written to a file (tmux does not always learn it)."""
        self.tmux("new-session", "-d", "-s", name, "-x", str(width), "-y", "50", "-c", str(cwd), "-e", f"PATH={path}",
                  f"{shlex.join(command)}; echo $? > {shlex.quote(str(self.folder / name))}.status")

    def wait(self, timeout: float = HUNG_S) -> dict[str, str]:
        """Each session's exit status, once every command has exited and its pane has shown all it wrote."""
        deadline = time.monotonic() + timeout
        while True:
            dead = dict(line.split() for line in self.tmux("list-panes", "-a", "-F", "#{session_name} #{pane_dead}").splitlines())
            ended = {name: self._status(name) for name in dead}
            if all(ended.values()) and set(dead.values()) == {"1"} or time.monotonic() > deadline:
                return ended
            time.sleep(0.5)

    def _status(self, name: str) -> str:
        written = self.folder / f"{name}.status"
        return written.read_text().strip() if written.exists() else ""

    def screen(self, name: str) -> str:
        """What the pane shows, the lines scrolled off it first; tmux's own 'Pane is dead' line left out."""
        text = self.tmux("capture-pane", "-p", "-S", "-", "-t", name)
        return re.sub(r"\n*Pane is dead.*", "", text).rstrip("\n")

    def close(self) -> None:
        subprocess.run([*self.command, "kill-server"], env=self.env, capture_output=True, timeout=HUNG_S)


@dataclasses.dataclass
class Grid:
    """A table read back from a screen: each column's header (its lines joined by a space), each row's cells
    (each cell its lines, stripped), whether its lines end at its right edge, and the text under it."""

    headers: list[str]
    rows: list[list[list[str]]]
    closed: bool
    under: str


def _cells(line: str, bounds: list[int]) -> list[str]:
    return [line[left + 1:right].strip() for left, right in zip(bounds, bounds[1:])]


def _grid(lines: list[str], rule: int) -> tuple[Grid, int, int]:
    """The table whose header ends at lines[rule] ('┡━━╇━━┩', or '━━╇━━' without a frame), and where its header
    starts and its rows end. A row starts where its first cell has text (every table leads with a name)."""
    text = lines[rule].rstrip()
    inner = [i for i, char in enumerate(text) if char == "╇"]
    framed = text.lstrip().startswith("┡")
    bounds = [text.index("┡"), *inner, len(text) - 1] if framed else [-1, *inner, len(text)]
    top = rule
    while top > 0 and all(len(lines[top - 1]) > i and lines[top - 1][i] == "┃" for i in inner):
        top -= 1
    headers = [" ".join(filter(None, column)) for column in zip(*(_cells(line, bounds) for line in lines[top:rule]))]
    body, rows = rule + 1, []
    while body < len(lines) and inner and all(len(lines[body]) > i and lines[body][i] == "│" for i in inner):
        cells = _cells(lines[body], bounds)
        if cells[0] or not rows:
            rows.append([[] for _ in cells])
        for column, cell in zip(rows[-1], cells):
            column.append(cell)
        body += 1
    ends = [line.rstrip() for line in lines[top:body]]  # the rule ends with '┩', a header line with '┃', a row with '│'
    closed = all(len(line) == len(text) and line[-1] in "┃┩│" for line in ends) if framed else \
        all(len(line) <= len(text) for line in ends)
    return Grid(headers, rows, closed, ""), top, body


def tables(screen: str) -> list[Grid]:
    """Every table on a screen, with the text under it, up to the next table's header."""
    lines = screen.splitlines()
    rules = [i for i, line in enumerate(lines) if line.strip() and set(line.strip()) <= set("┡━╇┩") and "╇" in line]
    found = [_grid(lines, rule) for rule in rules]
    for (grid, _, end), following in zip(found, [*(top for _, top, _ in found[1:]), len(lines)]):
        grid.under = " ".join(line.strip() for line in lines[end:following])
    return [grid for grid, _, _ in found]


# The columns of words a user reads as prose: they may wrap at their spaces. Any other cell stands on one line.
PROSE = {"reason", "note", "source", "system", "settings", "status", "item", "this sweep", "paper", "test", "gpu types",
         "torch runs it",
         "not separable from (5%)"}


@dataclasses.dataclass(frozen=True)
class Screen:
    """What a command's screen holds at 80 and at 100 columns: each table's headers in order (shown, or named
    under it as making way); those shown at both widths; texts that stand whole as cells; (header, text): prose
    that reads whole wherever its column is shown; the exit status."""

    headers: tuple[tuple[str, ...], ...]
    kept: tuple[str, ...] = ()
    cells: tuple[str, ...] = ()
    prose: tuple[tuple[str, str], ...] = ()
    code: int = 0


BOARD = ("model", "params", "acc %", "acc 95% CI", "loss (BCE)", "prec %", "recall %", "F1 %", "AUC %", "train img/s")
SCREENS = {
    "models": Screen((("model", "timm weights", "params", "paper params", "delta", "input", "interpolation", "keras mode"),),
                     kept=("model", "params", "paper params"), cells=("24,610,753", "24,637,313", "caffe", *EIGHT)),
    "cluster": Screen((("partition", "default", "state", "nodes", "cpus/node", "mem MB/node", "gpus/node", "gpu types", "gpu model",
                        "capability", "torch runs it", "max time", "default time"), ("setting", "value", "source")),
                      kept=("partition", "gpus/node", "gpu model", "capability", "torch runs it", "setting", "value", "source"),
                      cells=("cpu_partition", "preprocess_time", "array_parallelism", "gpu:p100:1", "04:00:00", "P100", "6.0"),
                      prose=(("source", "the only partition with GPUs that is UP"),
                             ("source", "gpu sets neither DefaultTime nor MaxTime: the harness's 04:00:00"),
                             ("source", "MaxArraySize of cluster harness: array indices 0-1000"))),
    "history": Screen((("date", "model", "system", "settings", "sweep", "seeds", "train img/s", "change", "torch", "cuda", "driver",
                        "commit"),), kept=("date", "model", "sweep", "train img/s"),
                      cells=("2026-02-01 01:00", *PAIR, "111.0", "102.0"),
                      prose=(("system", "marwan/p100 Tesla P100-PCIE-16GB x1"),
                             ("settings", "64px b32 lr 0.001 adam fp32 tf32 - cl - compile - transfer 5ep"))),
    "compare": Screen((("model", "figure", "a", "a seeds", "b", "b seeds", "ratio", "beyond spread", "test", "note"),),
                      kept=("model", "figure", "a", "b", "beyond spread"), cells=(*PAIR, "accuracy_per_gpu_hour", "80.20%", "1,120.5"),
                      prose=(("note", "no GPU in use (device: cpu)"),)),
    "leaderboard": Screen(((*BOARD, "infer img/s", "GPU util %", "status"),), kept=("model", "acc %", "acc 95% CI"),
                          cells=(*EIGHT, "[79.39, 81.37]"), prose=(("status", "2 COMPLETED, 1 DAMAGED"),)),
    "leaderboard-paper": Screen((("item", "this sweep", "paper", "same"), ("model", "acc %", "prec %", "recall %", "F1 %", "loss (BCE)",
                                                                          "runs")),
                                kept=("item", "this sweep", "paper", "same", "model", "acc %", "loss (BCE)", "runs"),
                                cells=(*EIGHT, "80.4 [99.3]", "0.300 [0.617]", "2/3 done"),
                                prose=(("paper", "CelebA-HQ real, StyleGAN fakes"), ("paper", "not stated (Keras: 224/299 px)"))),
    "leaderboard-dle": Screen(((*(h for h in BOARD if h != "acc 95% CI"), "ranks", "speedup", "efficiency %", "eff 95% CI (seeds)",
                                "infer img/s", "GPU util %", "group",
                                "status", "NVIDIA speedup", "NVIDIA efficiency %"),),
                              kept=("model", "ranks", "speedup", "NVIDIA speedup", "NVIDIA efficiency %"),
                              cells=("ResNet50 [x1]", "MobileNetV2 [x2]", "2.00x")),
    "status": Screen((("run_id", "state", "job_id", "partition", "node", "elapsed", "epoch", "val acc %", "requeues", "reason"),),
                     kept=("run_id", "state", "reason"), cells=("NASNetMobile-s0", "InceptionV3-s1", "COMPLETED", "DAMAGED"),
                     prose=(("reason", "result.json: not whole JSON (Unterminated string starting at: line 1 column 35 (char 34)); "
                                       "sweep --resume reruns it"),)),
    "check": Screen((("model", "figure", "value", "reference", "lower_bound", "upper_bound", "ratio", "seeds", "verdict", "reason"),),
                    kept=("model", "figure", "value", "reference", "verdict", "reason"), cells=(*EIGHT, "80.40%", "85.00%", "FAIL"),
                    prose=(("reason", "below the reference's range"),), code=1),
    "predict": Screen((("image", "p_fake %", "verdict", "reason"),), kept=("image", "p_fake %", "reason"),
                      cells=("face.png", "album.png", "missing.png"),
                      prose=(("reason", "a folder, not an image file"), ("reason", "No such file or directory")), code=1),
}


@pytest.fixture(scope="module")
def screens(tmp_path_factory, slurm_fence, tmux) -> dict[tuple[str, int], tuple[str, str]]:
    """Each command's exit status and screen at each width, the commands run side by side, a pane each. Slurm's
    commands: the stand-ins answering as the local cluster did, then conftest's fence, which fails the test."""
    root = tmp_path_factory.mktemp("terminal")
    results, inputs = root / "results", root / "inputs"
    _sweeps(results)
    _perflog(results)
    _trained(results, inputs)
    path = os.pathsep.join([str(_slurm(root / "slurm")), str(slurm_fence), os.environ["PATH"]])
    env = {**{k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}, "SLURM_FENCE_LOG": str(root / "fenced")}
    panes, shown = Panes(tmux, root, env), {}
    try:
        for name, args in _commands(root).items():
            for width in WIDTHS:
                panes.start(f"{name}-{width}", width, [sys.executable, "-m", "harness", *args], inputs, path)
        ended = panes.wait()
        shown = {(name, width): (ended[f"{name}-{width}"], panes.screen(f"{name}-{width}")) for name in SCREENS for width in WIDTHS}
    finally:
        panes.close()
    assert not (root / "fenced").exists(), (root / "fenced").read_text()
    return shown


def _check_table(grid: Grid, headers: tuple[str, ...], screen: str) -> None:
    """Every header whole and in order, those that make way named under the table, every cell but prose on
    one line, the table's lines whole to its right edge."""
    assert grid.closed, f"a line of the table is cut, or runs past its right edge:\n{screen}"
    assert grid.headers == [h for h in headers if h in grid.headers], f"a header cut, or unknown: {grid.headers}\n{screen}"
    dropped = [h for h in headers if h not in grid.headers]
    named = f"--wide for {len(dropped)} more column{'s' if len(dropped) > 1 else ''}: {', '.join(dropped)}"
    assert (named in grid.under) if dropped else ("--wide for" not in grid.under), f"{named!r} under the table?\n{screen}"
    for row in grid.rows:
        for header, lines in zip(grid.headers, row):
            assert header in PROSE or not any(lines[1:]), f"{header}: {lines} wraps\n{screen}"


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", SCREENS)
def test_every_table_reads_whole_in_a_terminal(screens, name, width):
    code, screen = screens[name, width]
    expected = SCREENS[name]
    assert code == str(expected.code), screen
    assert "…" not in screen
    grids = tables(screen)
    assert len(grids) == len(expected.headers), screen
    for grid, headers in zip(grids, expected.headers):
        _check_table(grid, headers, screen)
    shown = [header for grid in grids for header in grid.headers]
    assert set(expected.kept) <= set(shown), f"{set(expected.kept) - set(shown)} made way\n{screen}"
    cells = [(header, " ".join(filter(None, lines))) for grid in grids for row in grid.rows for header, lines in zip(grid.headers, row)]
    assert set(expected.cells) <= {text for _, text in cells}, f"{set(expected.cells) - {text for _, text in cells}}\n{screen}"
    for header, text in expected.prose:
        assert header not in shown or (header, text) in cells, f"{header}: {text!r} does not read whole\n{screen}"
