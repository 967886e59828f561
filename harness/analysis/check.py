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
one it ran without a value for the figure (its runs failed, or a GPU figure on a CPU) fails.

A time, a rate or an energy (the registry's contended figures) measures the node as much as the run: from
a run that shared its node or GPU (its record's sharing) it is "not comparable", naming what shared it,
neither a pass nor a failure. A figure timed in windows (images/s) fails only where the whole
interquartile range of its windows (the mean of each seed's quartiles) lies outside the reference's
range: a median just outside it, its windows reaching in, passes, saying so. Plain Python, like the
leaderboard.

References can be kept per system, as ReFrame keys them by 'system:partition': a table
[systems."CLUSTER:PARTITION:GPU".ARCHITECTURE] holds the references of the sweeps that ran there (each
part a shell pattern, case-insensitive, "*" any; parts left out match anything), and an architecture's
table at the top holds references for every system. A sweep is checked against its own system's
(the most specific pattern that matches it), else the top-level ones; a figure with references for
other systems only is "no reference", never a failure.

    [systems."marwan:gpu:*P100*".ResNet50]
    train_images_per_s = { value = 412.0, lower = -0.10 }
"""
import fnmatch
import math
import re
import statistics
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomlkit

from harness.analysis.compare import sweep_figures
from harness.analysis.load import SweepResults
from harness.errors import UserError
from harness.store.atomic import locked, write_text_atomic
from harness.store.figures import FIGURES
from harness.store.perflog import system_key, system_of
from harness.store.schema import TooDeep, parse_toml
from harness.store.user_files import check_output_place, read_user_file

ENTRY_KEYS = {"value", "lower", "upper", "unit"}
NO_REFERENCE = "no reference"  # the references hold the figure for other systems only
NOT_COMPARABLE = "not comparable"  # a time, rate or energy of a run that shared its node or GPU: neither pass nor FAIL
MAX_REFERENCES_BYTES = 4 * 2**20  # eight architectures' figures on hundreds of systems fit in a tenth of it
SYSTEM_KEY = re.compile(r"[^:\x00-\x1f]+(:[^:\x00-\x1f]+){0,2}")


ANY_SYSTEM = "*"
SYSTEM_PARTS = 3  # cluster, partition, GPU


def system_parts(pattern: str) -> list[str]:
    """A system key's parts, cluster:partition:GPU, those left out as '*'."""
    parts = pattern.split(":")
    return parts + ["*"] * (SYSTEM_PARTS - len(parts))


def system_matches(pattern: str, system: str) -> bool:
    """Whether a system key (each part a shell pattern, case-insensitive) names system (CLUSTER:PARTITION:GPU)."""
    return all(fnmatch.fnmatch(have.lower(), want.lower()) for want, have in zip(system_parts(pattern), system_parts(system)))


def specificity(pattern: str) -> tuple[int, int]:
    """How many parts of a system key name something, then how many name it exactly (no pattern): the most
    specific key that matches is the one used, a system's own key before a pattern that also matches it."""
    parts = system_parts(pattern)
    return sum(part != "*" for part in parts), sum(not any(c in part for c in "*?[") for part in parts)


@dataclass(frozen=True)
class Reference:
    architecture: str
    figure: str
    value: float
    lower: float | None = None
    upper: float | None = None
    system: str = ANY_SYSTEM  # the systems it holds for (a key of [systems]), or every system

    def bounds(self) -> tuple[float | None, float | None]:
        """The figure's allowed range, within what the figure can be (a fraction is at most 1: an accuracy
        of 0.99 + 5% allows up to 1, not 1.04); None on a side without a bound."""
        most = 1.0 if FIGURES[self.figure].percent else math.inf
        return (None if self.lower is None else self.value * (1 + self.lower),
                None if self.upper is None else min(most, self.value * (1 + self.upper)))

    def holds(self, figure: float) -> bool:
        return self.reaches(figure, figure)

    def reaches(self, lowest: float, highest: float) -> bool:
        """Whether the range [lowest, highest] (a figure's windows' interquartile range) meets the allowed one."""
        low, high = self.bounds()
        return (low is None or highest >= low) and (high is None or lowest <= high)


@dataclass(frozen=True)
class References:
    references: list[Reference]
    description: str = ""
    source: Path | None = field(default=None, compare=False)  # the file read, named in messages about it

    def find(self, architecture: str, figure: str, system: str = ANY_SYSTEM) -> Reference | None:
        """The reference written for exactly this system key (default: the one for every system)."""
        return next((r for r in self.references if (r.architecture, r.figure, r.system) == (architecture, figure, system)), None)

    def for_system(self, architecture: str, figure: str, system: str) -> Reference | None:
        """The reference a sweep on system (CLUSTER:PARTITION:GPU) is checked against: the most specific
        system key that matches it; None when only other systems have one."""
        matching = [r for r in self.references if (r.architecture, r.figure) == (architecture, figure)
                    and system_matches(r.system, system)]
        return max(matching, key=lambda r: specificity(r.system), default=None)


def _number(value: Any) -> bool:
    """A finite number, a float can hold (TOML's integers have no bound: math.isfinite overflows on 10**400)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return abs(value) <= sys.float_info.max if isinstance(value, int) else math.isfinite(value)


def _entry(path: Path, architecture: str, figure: str, entry: Any) -> Reference:
    where = f"references {path}: [{architecture}] {figure}"
    if figure not in FIGURES:
        raise UserError(f"{where}: unknown figure; known figures: {', '.join(FIGURES)}")
    if not isinstance(entry, dict):
        raise UserError(f"{where} = {entry!r:.40} is not a table: write it as {{ value = 0.99, lower = -0.05, upper = 0.05 }}")
    unknown = sorted(set(entry) - ENTRY_KEYS)
    if unknown:
        raise UserError(f"{where}: unknown keys {', '.join(unknown)}; an entry has value, lower, upper and unit")
    unit = FIGURES[figure].unit
    most = 1 if FIGURES[figure].percent else math.inf
    if not (_number(entry.get("value")) and 0 <= entry["value"] <= most):
        raise UserError(f"{where}: value must be a number from 0{' to 1' if most == 1 else ''} ({unit}), "
                        f"got {entry.get('value')!r:.40}")
    lower, upper = entry.get("lower"), entry.get("upper")
    if lower is not None and not (_number(lower) and -1 <= lower <= 0):
        raise UserError(f"{where}: lower must be a fraction between -1 and 0 (e.g. -0.05 for 5% below), got {lower!r:.40}")
    if upper is not None and not (_number(upper) and upper >= 0):
        raise UserError(f"{where}: upper must be a fraction of at least 0 (e.g. 0.05 for 5% above), got {upper!r:.40}")
    if lower is None and upper is None:
        raise UserError(f"{where}: gives neither lower nor upper: nothing to check")
    if entry.get("unit") not in (None, unit):
        raise UserError(f"{where}: unit {entry['unit']!r:.20} but the harness measures {figure} in {unit}")
    return Reference(architecture, figure, entry["value"], lower, upper)


def parse_references(text: str, path: Path) -> References:
    """References from TOML text; UserError, in one line naming the file and the entry, when it is not valid."""
    try:
        data = parse_toml(text)
    except TooDeep as err:
        raise UserError(f"references {path} is not valid: {err}") from None
    except ValueError as err:  # tomllib's TOMLDecodeError, or an integer over Python's 4,300 digits
        raise UserError(f"references {path} is not valid TOML: {err}") from None
    description = data.pop("description", "")
    if not isinstance(description, str):
        raise UserError(f"references {path}: description must be text")
    systems = data.pop("systems", {})
    if not isinstance(systems, dict) or not all(isinstance(t, dict) for t in systems.values()):
        raise UserError(f"references {path}: systems must hold tables, [systems.\"CLUSTER:PARTITION:GPU\".ARCHITECTURE]")
    references = []
    for system, architectures in [(ANY_SYSTEM, data), *systems.items()]:
        if not SYSTEM_KEY.fullmatch(system):
            raise UserError(f"references {path}: system {system!r:.60} is not CLUSTER:PARTITION:GPU (patterns, '*' any)")
        for architecture, figures in architectures.items():
            if not isinstance(figures, dict):
                raise UserError(f"references {path}: {architecture} = {figures!r:.40} is not a table of figures; "
                                f"write [{architecture}] and one figure a line beneath it")
            for figure, entry in figures.items():
                references.append(replace(_entry(path, architecture, figure, entry), system=system))
    if not references:
        raise UserError(f"references {path} holds no reference")
    return References(references, description, path)


def references_text(path: Path) -> str:
    """The text of a references file: a regular file (a FIFO or a device is refused, never waited on or
    read) of at most MAX_REFERENCES_BYTES; UserError, in one line, otherwise."""
    try:
        return read_user_file(path, "references file", MAX_REFERENCES_BYTES).decode()
    except FileNotFoundError:
        raise UserError(f"references file {path} does not exist (write one with check SWEEP --references {path} "
                        "--update-references)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"references file {path} cannot be read: {err}") from None


def read_references(path: Path) -> References:
    """The references in path (references_text), valid as parse_references reads them."""
    return parse_references(references_text(Path(path)), Path(path))


@dataclass(frozen=True)
class RowFigures:
    """A leaderboard row as check reads it: each figure's mean over the completed seeds, the mean of its
    timed windows' quartiles (q1, q3) where every seed has them, the runs that shared their node or GPU
    (what shared each), those whose sharing is not known, and how many seeds."""

    means: dict[str, float | None]
    spreads: dict[str, tuple[float, float]]
    shared: list[str]
    unknown: list[str]
    seeds: int


def sweep_rows(results: SweepResults) -> dict[str, RowFigures]:
    """Each leaderboard row's figures for check (RowFigures)."""
    rows = sweep_figures(results)
    found = {}
    for label, runs in rows.items():
        means, spreads = {}, {}
        for name, figure in FIGURES.items():
            values = [v for r in runs if (v := r.values.get(name)) is not None]
            means[name] = statistics.fmean(values) if values else None
            quartiles = [s for r in runs if (s := figure.spread_of(r.record)) is not None]
            if quartiles and len(quartiles) == len(runs):
                spreads[name] = (statistics.fmean(s["q1"] for s in quartiles), statistics.fmean(s["q3"] for s in quartiles))
        shared = [f"{r.run_id}: {'; '.join(r.record.shared_by)}" for r in runs if r.record.shared_by]
        unknown = [r.run_id for r in runs if (r.record.sharing or {}).get("alone") is None and not r.record.shared_by]
        found[label] = RowFigures(means, spreads, shared, unknown, len(runs))
    return found


def verdict(reference: Reference, figure: str, row: RowFigures | None) -> tuple[str, str]:
    """A figure's verdict and its reason. A time, rate or energy (the registry's contended figures) from a run
    that shared its node or GPU is not comparable: neither a pass nor a fail. Otherwise a figure outside
    the reference's range fails, unless its timed windows' interquartile range still reaches into it."""
    if row is None:
        return "not run", "the sweep has no such architecture"
    if FIGURES[figure].contended and row.shared:
        return NOT_COMPARABLE, "shared " + "; ".join(row.shared[:3]) + (f"; and {len(row.shared) - 3} more" if len(row.shared) > 3 else "")
    value = row.means[figure]
    if value is None:
        return "FAIL", f"no value ({'no completed run' if not row.seeds else 'not measured'})"
    unknown = f"; whether {', '.join(row.unknown[:3])} had {'its' if len(row.unknown) == 1 else 'their'} node and GPU " \
        "alone is not known" if FIGURES[figure].contended and row.unknown else ""
    if reference.holds(value):
        return "pass", unknown.removeprefix("; ")
    low, _ = reference.bounds()
    side = "below" if low is not None and value < low else "above"
    spread = row.spreads.get(figure)
    if spread is not None and reference.reaches(*spread):
        return "pass", f"{side} the reference's range, but its windows' interquartile range reaches into it{unknown}"
    whole = ", its windows' interquartile range too" if spread is not None else ""
    return "FAIL", f"{side} the reference's range{whole}{unknown}"


def sweep_system(results: SweepResults) -> str:
    """Where a sweep ran, as a reference's system key reads it (store.perflog.system_key), from its first
    completed run's record."""
    for records in results.completed().values():
        if records:  # a row whose runs have not completed has none to read
            return system_key(system_of(records[0], results.spec, {}))
    return "none:none:none"


def check_sweep(results: SweepResults, references: References) -> list[dict[str, Any]]:
    """One row per (architecture, figure) the references hold: the sweep's figure, the reference for its
    system (References.for_system), the bounds, and pass, FAIL, not run or no reference."""
    figures = sweep_rows(results)
    if not any(ref.architecture in figures for ref in references.references):  # every row "not run": checks nothing
        named = sorted({ref.architecture for ref in references.references})
        source = f" in {references.source}" if references.source else ""
        raise UserError(f"no architecture of the references{source} ({', '.join(named)[:200]}) is in sweep "
                        f"{results.spec.sweep_id}, whose rows are {', '.join(figures)}: nothing to check (a table "
                        "of the file is named as the leaderboard names its row)")
    system, rows = sweep_system(results), []
    for architecture, figure in dict.fromkeys((r.architecture, r.figure) for r in references.references):
        ref = references.for_system(architecture, figure, system)
        found = figures.get(architecture)
        value = found.means[figure] if found else None
        spread = found.spreads.get(figure) if found else None
        row = {"model": architecture, "figure": figure, "unit": FIGURES[figure].unit, "value": value,
               "q1": spread[0] if spread else None, "q3": spread[1] if spread else None, "system": system,
               "reference": None, "lower_bound": None, "upper_bound": None, "ratio": None, "seeds": found.seeds if found else 0}
        if ref is None:
            others = sorted({r.system for r in references.references if (r.architecture, r.figure) == (architecture, figure)})
            rows.append({**row, "verdict": NO_REFERENCE, "reason": f"references only for {', '.join(others)}"})
            continue
        low, high = ref.bounds()
        outcome, why = verdict(ref, figure, found)
        rows.append({**row, "reference": ref.value, "lower_bound": low, "upper_bound": high,
                     "ratio": value / ref.value if value is not None and ref.value else None, "verdict": outcome, "reason": why})
    return rows


def _table(document: Any, system: str, architecture: str) -> Any:
    """The TOML table of an architecture's references for a system key, made where it is missing."""
    parent = document
    if system != ANY_SYSTEM:
        parent = document.setdefault("systems", tomlkit.table(is_super_table=True))
        parent = parent.setdefault(system, tomlkit.table(is_super_table=True))
    return parent.setdefault(architecture, tomlkit.table())


def _new_references(results: SweepResults) -> Any:
    document = tomlkit.document()
    for line in ('References for `python -m harness check SWEEP --references FILE` (docs/site.md, "A benchmark across sweeps").',
                 "Per system, architecture and figure: value, and the tolerance as fractions of it, ReFrame's way: the",
                 "figure passes when value * (1 + lower) <= figure <= value * (1 + upper); no lower or no upper: no bound."):
        document.add(tomlkit.comment(line))
    document.add("description", f"references from sweep {results.spec.sweep_id}")
    return document


def update_references(results: SweepResults, path: Path, all_systems: bool = False) -> tuple[int, str, list[str]]:
    """Write the sweep's figures into the references in path as an editor would, under a lock beside it
    held from the read to the write (two updates at once lose nothing), atomically, the file keeping its
    mode. Each figure goes under the sweep's own system key, or with all_systems under the key of every
    system: an entry there takes the new value and keeps its tolerance; a new one takes the tolerance the
    sweep was checked against, else the one the registry gives it (store.figures: a figure without one is
    not written). Comments, the description and every other
    reference stay as they were (tomlkit); each entry written says which sweep it is from. A time, rate or
    energy of a row whose runs shared their node or GPU is not written (it is no reference for a run alone).
    Returns how many figures were written, under which system key, and the rows so left out. The lock file,
    .FILE.lock, stays."""
    path = Path(path)
    check_output_place(path, "--references")
    if path.exists():  # a file that is no references is refused before the lock file is made
        parse_references(references_text(path), path)
    with locked(path.with_name(f".{path.name}.lock")):
        text = references_text(path) if path.exists() else None
        previous = None if text is None else parse_references(text, path)  # refused in one line when not valid
        document = _new_references(results) if text is None else tomlkit.parse(text)
        target = ANY_SYSTEM if all_systems else sweep_system(results)
        written, shared = _write_figures(document, results, previous, target)
        if not written:
            raise UserError(f"sweep {results.spec.sweep_id} has no completed run with a figure to keep as a reference"
                            + (f": the speed figures of {', '.join(shared)} are of runs that shared their node or GPU "
                               "(their records' sharing says with what)" if shared else ""))
        text = tomlkit.dumps(document)
        parse_references(text, path)  # what is written reads back
        write_text_atomic(path, text)
    return written, target, shared


def _write_figures(document: Any, results: SweepResults, previous: References | None, target: str) -> tuple[int, list[str]]:
    """Set each figure of the sweep in document under the system key target; returns how many, and the rows
    whose contended figures were left out (their runs shared their node or GPU)."""
    system, rows, written = sweep_system(results), sweep_rows(results), 0
    for label, row in rows.items():
        for figure, value in row.means.items():
            default = FIGURES[figure].tolerance
            if value is None or default is None or (FIGURES[figure].contended and row.shared):
                continue
            table = _table(document, target, label)
            if figure in table:
                table[figure]["value"] = value
            else:
                checked = previous.for_system(label, figure, system) if previous else None
                lower, upper = (checked.lower, checked.upper) if checked else default
                table[figure] = tomlkit.inline_table()
                table[figure].update({"value": value, **({"lower": lower} if lower is not None else {}),
                                      **({"upper": upper} if upper is not None else {}), "unit": FIGURES[figure].unit})
            table[figure].comment(f"from sweep {results.spec.sweep_id}")
            written += 1
    return written, [label for label, row in rows.items() if row.shared]
