"""The files beside a completed run's record that its figures come from: history.csv (one row per epoch,
the training curves) and test_scores.npy (the test labels and probabilities: ROC curves, the paired
tests). Each is read here only, and checked as a record is: a file that is not what a run writes is
damaged, never half-used. A file that is absent is no damage (records of the first releases had none):
the figures that need it leave the run out.
"""
import csv
import io
import math
from pathlib import Path
from typing import Any

from harness.store.paths import RunPaths
from harness.store.schema import DamagedFile, read_kept

HISTORY_COLUMNS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"]
FRACTIONS = ("train_accuracy", "val_accuracy")


def read_history(path: Path, epochs: int | None = None) -> list[dict[str, float]] | None:
    """history.csv's rows (epoch first, each value a finite number, accuracies in [0, 1], epochs 1, 2, ...);
    None when the file is absent. epochs: how many rows the record says there are."""
    try:
        rows = list(csv.DictReader(io.StringIO(read_kept(path).decode(), newline="")))
        header = list(rows[0]) if rows else None
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DamagedFile(path, f"not a readable CSV ({err})") from None
    if header is not None and header != HISTORY_COLUMNS:
        raise DamagedFile(path, f"its columns are {', '.join(map(str, header))[:80]}, not {', '.join(HISTORY_COLUMNS)}")
    table = []
    for number, row in enumerate(rows, 1):
        try:
            values = {column: float(row[column]) for column in HISTORY_COLUMNS}
        except (TypeError, ValueError):
            raise DamagedFile(path, f"row {number} holds a value that is not a number") from None
        bad = [c for c, v in values.items() if not math.isfinite(v) or (c in FRACTIONS and not 0 <= v <= 1)]
        if bad or values["epoch"] != number:
            raise DamagedFile(path, f"row {number}: " + (f"{bad[0]} {values[bad[0]]!r} is out of range" if bad
                                                         else f"epoch {values['epoch']:g}, not {number}"))
        table.append(values)
    if epochs is not None and len(table) != epochs:
        raise DamagedFile(path, f"{len(table)} epochs, where the record says {epochs}")
    return table


def read_test_scores(path: Path, count: int | None = None) -> tuple[Any, Any, Any] | None:
    """test_scores.npy's rows (labels, probabilities, groups), of one length (the record's test count):
    labels 0 or 1, probabilities in [0, 1], and each image's group renumbered 0..G-1 (None where the
    file has no third row: the manifest gave no groups); None when the file is absent."""
    import numpy as np

    try:
        scores = np.load(io.BytesIO(read_kept(path)), allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError) as err:  # not an .npy file, truncated, or an object array
        raise DamagedFile(path, f"not a saved array ({str(err)[:80]})") from None
    if not isinstance(scores, np.ndarray) or scores.ndim != 2 or scores.shape[0] < 2 or scores.dtype.kind not in "fiub":
        raise DamagedFile(path, f"an array of shape {getattr(scores, 'shape', '?')} ({getattr(scores, 'dtype', '?')}), "
                          "not rows of numbers (labels, probabilities, ...)")
    labels, probabilities = scores[:2].astype(np.float64)
    if count is not None and len(labels) != count:
        raise DamagedFile(path, f"{len(labels)} test images, where the record says {count}")
    if not np.isin(labels, (0, 1)).all():
        raise DamagedFile(path, "its first row holds labels other than 0 and 1")
    if not (np.isfinite(probabilities).all() and ((probabilities >= 0) & (probabilities <= 1)).all()):
        raise DamagedFile(path, "its second row holds probabilities outside [0, 1]")
    if len(scores) == 2:
        return labels.astype(np.int64), probabilities, None
    if len(scores) > 3 or not (np.isfinite(scores[2]).all() and np.array_equal(scores[2], np.round(scores[2]))):
        raise DamagedFile(path, "its third row holds group numbers that are not whole numbers (or a fourth row follows)")
    return labels.astype(np.int64), probabilities, np.unique(scores[2], return_inverse=True)[1]


def check_run_files(run: RunPaths, test_count: int | None, epochs: int | None) -> None:
    """A completed run's history.csv and test_scores.npy, where it has them, are what a run writes."""
    read_history(run.history, epochs)
    read_test_scores(run.test_scores, test_count)
