"""References with tolerances, and a check that fails (ReFrame's way): `check SWEEP --references FILE`.

A reference file is TOML, one table per architecture (the leaderboard's row name), one entry per
figure, its tolerance as fractions of the value, ReFrame's lower and upper thresholds:

    description = "P100 partition, after the 2024 driver upgrade"

    [ResNet50]
    accuracy = { value = 0.9934, lower = -0.05, upper = 0.05 }
    train_images_per_s = { value = 412.0, lower = -0.10 }    # no upper bound: faster is no failure

The figure passes when value + lower x |value| <= figure <= value + upper x |value|, that is
value x (1 + lower) ... value x (1 + upper) for the positive figures the harness measures; lower or
upper left out: no bound on that side. Figures are
the sweep's means over its completed seeds. An architecture of the file that the sweep did not run is
"not run", not a failure (a file none of whose architectures the sweep ran checks nothing: refused);
one it ran without a value for the figure (its runs failed, or a GPU figure on a CPU) fails. Plain
Python, like the leaderboard.
"""
import json
import math
import re
import statistics
import tomllib
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.analysis.compare import sweep_figures
from harness.analysis.load import SweepResults
from harness.errors import UserError
from harness.store.atomic import write_text_atomic
from harness.store.perflog import FIGURE_UNITS

# The tolerance --update-references gives a figure it writes for the first time (lower, upper), and
# which figures it writes: accuracy both ways (a jump is as suspect as a drop), speed only downwards,
# cost (energy, memory) only upwards.
DEFAULT_TOLERANCE: dict[str, tuple[float | None, float | None]] = {
    "accuracy": (-0.05, 0.05),
    "auc": (-0.05, 0.05),
    "train_images_per_s": (-0.10, None),
    "infer_images_per_s": (-0.10, None),
    "mfu": (-0.10, None),
    "gpu_util_median": (-0.10, None),
    "energy_per_image_j": (None, 0.10),
    "peak_gpu_memory_bytes": (None, 0.10),
}
ENTRY_KEYS = {"value", "lower", "upper", "unit"}
BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Reference:
    architecture: str
    figure: str
    value: float
    lower: float | None = None
    upper: float | None = None

    def bounds(self) -> tuple[float | None, float | None]:
        """The figure's allowed range, within what the figure can be (a fraction is at most 1: an accuracy
        of 0.99 + 5% allows up to 1, not 1.04); None on a side without a bound."""
        most = 1.0 if FIGURE_UNITS.get(self.figure) == "fraction" else math.inf
        return (None if self.lower is None else self.value * (1 + self.lower),
                None if self.upper is None else min(most, self.value * (1 + self.upper)))

    def holds(self, figure: float) -> bool:
        low, high = self.bounds()
        return (low is None or figure >= low) and (high is None or figure <= high)


@dataclass(frozen=True)
class References:
    references: list[Reference]
    description: str = ""
    source: Path | None = field(default=None, compare=False)  # the file read, named in messages about it

    def find(self, architecture: str, figure: str) -> Reference | None:
        return next((r for r in self.references if r.architecture == architecture and r.figure == figure), None)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _entry(path: Path, architecture: str, figure: str, entry: Any) -> Reference:
    where = f"references {path}: [{architecture}] {figure}"
    if figure not in FIGURE_UNITS:
        raise UserError(f"{where}: unknown figure; known figures: {', '.join(FIGURE_UNITS)}")
    if not isinstance(entry, dict):
        raise UserError(f"{where} = {entry!r:.40} is not a table: write it as {{ value = 0.99, lower = -0.05, upper = 0.05 }}")
    unknown = sorted(set(entry) - ENTRY_KEYS)
    if unknown:
        raise UserError(f"{where}: unknown keys {', '.join(unknown)}; an entry has value, lower, upper and unit")
    most = 1 if FIGURE_UNITS[figure] == "fraction" else math.inf
    if not (_number(entry.get("value")) and 0 <= entry["value"] <= most):
        raise UserError(f"{where}: value must be a number from 0{' to 1' if most == 1 else ''} "
                        f"({FIGURE_UNITS[figure]}), got {entry.get('value')!r:.40}")
    lower, upper = entry.get("lower"), entry.get("upper")
    if lower is not None and not (_number(lower) and -1 <= lower <= 0):
        raise UserError(f"{where}: lower must be a fraction between -1 and 0 (e.g. -0.05 for 5% below), got {lower!r:.40}")
    if upper is not None and not (_number(upper) and upper >= 0):
        raise UserError(f"{where}: upper must be a fraction of at least 0 (e.g. 0.05 for 5% above), got {upper!r:.40}")
    if lower is None and upper is None:
        raise UserError(f"{where}: gives neither lower nor upper: nothing to check")
    unit = entry.get("unit")
    if unit is not None and unit != FIGURE_UNITS[figure]:
        raise UserError(f"{where}: unit {unit!r:.20} but the harness measures {figure} in {FIGURE_UNITS[figure]}")
    return Reference(architecture, figure, entry["value"], lower, upper)


def parse_references(text: str, path: Path) -> References:
    """References from TOML text; UserError, in one line naming the file and the entry, when it is not valid."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"references {path} is not valid TOML: {err}") from None
    description = data.pop("description", "")
    if not isinstance(description, str):
        raise UserError(f"references {path}: description must be text")
    references = []
    for architecture, figures in data.items():
        if not isinstance(figures, dict):
            raise UserError(f"references {path}: {architecture} = {figures!r:.40} is not a table of figures; "
                            f"write [{architecture}] and one figure a line beneath it")
        for figure, entry in figures.items():
            references.append(_entry(path, architecture, figure, entry))
    if not references:
        raise UserError(f"references {path} holds no reference")
    return References(references, description, path)


def read_references(path: Path) -> References:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"references file {path} does not exist (write one with check SWEEP --references {path} "
                        "--update-references)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"references file {path} cannot be read: {err}") from None
    return parse_references(text, path)


def sweep_means(results: SweepResults) -> tuple[dict[str, dict[str, float | None]], dict[str, int]]:
    """Each leaderboard row's figures (mean over its completed seeds), and how many seeds each has."""
    rows, _ = sweep_figures(results)
    means: dict[str, dict[str, float | None]] = {}
    for label, runs in rows.items():
        means[label] = {}
        for figure in FIGURE_UNITS:
            values = [v for r in runs if (v := r.values.get(figure)) is not None]
            means[label][figure] = statistics.fmean(values) if values else None
    return means, {label: len(runs) for label, runs in rows.items()}


def verdict(reference: Reference, value: float | None, ran: bool) -> str:
    if not ran:
        return "not run"
    if value is None:
        return "FAIL"
    return "pass" if reference.holds(value) else "FAIL"


def check_sweep(results: SweepResults, references: References) -> list[dict[str, Any]]:
    """One row per reference: the sweep's figure, the reference, its bounds, and pass, FAIL or not run."""
    means, seeds = sweep_means(results)
    if not any(ref.architecture in means for ref in references.references):  # every row "not run": checks nothing
        named = sorted({ref.architecture for ref in references.references})
        source = f" in {references.source}" if references.source else ""
        raise UserError(f"no architecture of the references{source} ({', '.join(named)[:200]}) is in sweep "
                        f"{results.spec.sweep_id}, whose rows are {', '.join(means)}: nothing to check (a table "
                        "of the file is named as the leaderboard names its row)")
    rows = []
    for ref in references.references:
        ran = ref.architecture in means
        value = means.get(ref.architecture, {}).get(ref.figure)
        low, high = ref.bounds()
        outcome = verdict(ref, value, ran)
        why = ("the sweep has no such architecture" if not ran else
               f"no value ({'no completed run' if not seeds[ref.architecture] else 'not measured'})" if value is None else
               "" if outcome == "pass" else f"{'below' if low is not None and value < low else 'above'} the reference's range")
        rows.append({"model": ref.architecture, "figure": ref.figure, "unit": FIGURE_UNITS[ref.figure], "value": value,
                     "reference": ref.value, "lower_bound": low, "upper_bound": high, "ratio":
                     value / ref.value if value is not None and ref.value else None,
                     "seeds": seeds.get(ref.architecture, 0), "verdict": outcome, "reason": why})
    return rows


def updated_references(results: SweepResults, previous: References | None) -> References:
    """The sweep's figures as references: each one already in previous keeps its tolerance and takes the
    new value; the others get DEFAULT_TOLERANCE. Previous references the sweep has no value for stay."""
    means, _ = sweep_means(results)
    kept = list(previous.references) if previous else []
    for label, figures in means.items():
        for figure, (lower, upper) in DEFAULT_TOLERANCE.items():
            value = figures.get(figure)
            if value is None:
                continue
            old = previous.find(label, figure) if previous else None
            if old is not None:
                kept[kept.index(old)] = replace(old, value=value)
            else:
                kept.append(Reference(label, figure, value, lower, upper))
    description = previous.description if previous and previous.description else f"references from sweep {results.spec.sweep_id}"
    return References(kept, description, previous.source if previous else None)


def _key(text: str) -> str:
    return text if BARE_KEY.fullmatch(text) else json.dumps(text)


def _toml_number(value: float) -> str:
    return repr(value) if isinstance(value, float) else str(int(value))


def to_toml(references: References, source: str = "") -> str:
    """The references as a TOML file parse_references reads back to the same references."""
    lines = ["# References for `python -m harness check SWEEP --references FILE` (README: \"A benchmark across sweeps\").",
             "# Per architecture and figure: value, and the tolerance as fractions of it, ReFrame's way: the figure",
             "# passes when value * (1 + lower) <= figure <= value * (1 + upper); no lower or no upper: no bound there."]
    if source:
        lines.append(f"# {source}")
    lines += [f"description = {json.dumps(references.description)}", ""]
    by_architecture: dict[str, list[Reference]] = {}
    for ref in references.references:
        by_architecture.setdefault(ref.architecture, []).append(ref)
    for architecture, refs in by_architecture.items():
        lines.append(f"[{_key(architecture)}]")
        for ref in refs:
            parts = [f"value = {_toml_number(ref.value)}"]
            parts += [f"{side} = {_toml_number(bound)}" for side, bound in (("lower", ref.lower), ("upper", ref.upper))
                      if bound is not None]
            parts.append(f"unit = {json.dumps(FIGURE_UNITS[ref.figure])}")
            lines.append(f"{_key(ref.figure)} = {{ {', '.join(parts)} }}")
        lines.append("")
    return "\n".join(lines)


def update_references(results: SweepResults, path: Path) -> References:
    """Write the sweep's figures as the references in path (atomically), keeping the tolerances and the
    other architectures' references it already holds."""
    path = Path(path)
    previous = read_references(path) if path.exists() else None
    references = updated_references(results, previous)
    if not references.references:
        raise UserError(f"sweep {results.spec.sweep_id} has no completed run with a figure to keep as a reference")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    write_text_atomic(path, to_toml(references, f"Values written by --update-references from sweep {results.spec.sweep_id}, {stamp}."))
    return references
