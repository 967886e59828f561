"""An honest comparison with the paper: this sweep's setting beside the paper's, a one-line verdict on
where they differ, and Table 2's figures in brackets beside ours in a table that fits 100 columns.

Plain Python (no pandas, no torch): `leaderboard --compare paper` is typed often and must start fast.
"""
from collections import Counter
from pathlib import Path
from typing import Any

from harness.analysis.leaderboard import paper_table
from harness.analysis.status import manifest_rows
from harness.store.records import SweepSpec
from harness.zoo import KERAS_INPUT_SIZE, TIMM_WEIGHTS_ARE_KERAS
from harness.zoo.preprocessing import crops

PAPER_PER_CLASS = 5000
# What the paper states (Berrahal et al. 2023, sections 2.3, 3.1 and 4), and what it does not.
PAPER_SETTING = {
    "dataset": "CelebA-HQ real, StyleGAN fakes",
    "images per class": f"{PAPER_PER_CLASS:,} real, {PAPER_PER_CLASS:,} fake",
    "weights": "ImageNet (Keras')",
    "mode": "transfer (frozen backbone)",
    "input size": "not stated (Keras: 224/299 px)",
    "epochs": "not stated",
    "seeds": "not stated (one run shown)",
    "preprocessing": "not stated",
    "crop": "not stated (Keras: none)",
}
# Table 2's figures shown beside ours, and the short header of each.
COMPARED = ("accuracy", "precision", "recall", "f1", "loss")  # shown as "acc %" etc. (cells.label)
VIEW_TITLE = "ours [the paper's Table 2 in brackets], mean over seeds"
SETTING_COLUMNS = ["item", "this sweep", "paper", "same"]


def _is_demo(dataset: Path) -> bool:
    return dataset.parent.name == "datasets" and dataset.name.startswith("demo-")


def _class_counts(dataset: Path) -> Counter | None:
    """Images per label in the dataset's manifest; None where it cannot be read now (status says why)."""
    rows, _ = manifest_rows(str(dataset))
    return None if rows is None else Counter(row.get("label", "") for row in rows)


def _input_size(spec: SweepSpec) -> tuple[str, bool | None]:
    sizes = spec.image_sizes()
    keras = {KERAS_INPUT_SIZE.get(m) for m in spec.models}
    if set(sizes.values()) == {None}:  # each architecture's own timm size, which is Keras' default for all eight
        return "each its own: " + "/".join(str(s) for s in sorted(s for s in keras if s is not None)) + " px", True
    shared = spec.train.get("image_size")
    others = ", ".join(f"{m} {'own' if s is None else s}" for m, s in sizes.items() if s != shared)
    text = f"{shared or 'own'} px" + (f" ({others})" if others else "")
    return text, all(s is None or s == KERAS_INPUT_SIZE.get(m) for m, s in sizes.items())


def _preprocessing(spec: SweepSpec) -> tuple[str, str]:
    """The preprocessing the runs use (several under --ablate-preprocessing), and how each crops:
    ('paper', "none (whole image resized)") or ('timm, paper, caffe', 'timm: centre; paper, caffe: none')."""
    choices = list(dict.fromkeys(str(run.overrides.get("preprocessing", spec.train.get("preprocessing"))) for run in spec.runs))
    if len(choices) == 1:
        return choices[0], "centre (timm's crop_pct)" if crops(choices[0]) else "none (whole image resized)"
    by_crop = {word: [c for c in choices if crops(c) == cropped] for word, cropped in (("centre", True), ("none", False))}
    return ", ".join(choices), "; ".join(f"{', '.join(named)}: {word}" for word, named in by_crop.items() if named)


def _weights(spec: SweepSpec) -> tuple[str, bool]:
    weights = str(spec.train.get("weights"))
    if weights == "none":
        return "none (random init)", False
    if weights != "imagenet":
        return f"file {Path(weights).name}", False
    same = all(m in TIMM_WEIGHTS_ARE_KERAS for m in spec.models)
    return ("ImageNet (Keras', via timm)" if same else "ImageNet (timm's, not Keras')"), same


def setting_rows(spec: SweepSpec) -> list[dict[str, Any]]:
    """Item by item, this sweep's setting beside the paper's; `same` is yes, no, or ? where the paper
    does not say (or the harness cannot tell)."""
    dataset = Path(spec.dataset)
    demo = _is_demo(dataset)
    counts = _class_counts(dataset)
    generators = spec.train.get("train_generator")
    images = "unknown (no manifest)" if counts is None else f"{counts['real']:,} real, {counts['fake']:,} fake"
    same_images = None if counts is None else counts["real"] == counts["fake"] == PAPER_PER_CLASS
    weights, same_weights = _weights(spec)
    mode = str(spec.train.get("mode"))
    size, same_size = _input_size(spec)
    preprocessing, crop = _preprocessing(spec)
    rows = [
        ("dataset", "built-in demo" if demo else f"folder {dataset.name}", False if demo else None),
        ("images per class", images, same_images),
        ("weights", weights, same_weights),
        ("mode", "transfer (frozen backbone)" if mode == "transfer" else f"{mode} (all layers trained)", mode == "transfer"),
        ("input size", size, same_size),
        ("epochs", str(spec.train.get("epochs")), None),
        ("seeds", str(spec.seeds), None),
        ("preprocessing", preprocessing + (f", fakes of {generators}" if generators else ""), None),
        ("crop", crop, None),
    ]
    return [{"item": item, "this sweep": ours, "paper": PAPER_SETTING[item],
             "same": "?" if same is None else "yes" if same else "no"} for item, ours, same in rows]


def setting_line(setting: list[dict[str, Any]]) -> str:
    """One line: where this sweep's setting differs from the paper's."""
    differ = [r["item"] for r in setting if r["same"] == "no"]
    unknown = [r["item"] for r in setting if r["same"] == "?"]
    tail = f"; not stated by the paper or unknown: {', '.join(unknown)}" if unknown else ""
    if differ:
        return f"Not the paper's setting: {', '.join(differ)} differ{tail}."
    return f"The paper's setting where the paper states one{tail}."


def _pair(ours: Any, paper: Any, metric: str) -> str:
    """"91.2 [99.3]": a share in % with one decimal; the loss (binary cross-entropy, no share) with three."""
    shown = (lambda v: f"{v:.3f}") if metric == "loss" else (lambda v: f"{100 * v:.1f}")
    mine = "-" if ours is None else shown(ours)
    return mine if paper is None else f"{mine} [{shown(paper)}]"


def _runs_done(row: dict[str, Any]) -> str:
    """'2/3 done' from a status such as '2 COMPLETED, 1 FAILED'."""
    status = str(row.get("status") or "")
    total = sum(int(part.split()[0]) for part in status.split(", ") if part.split() and part.split()[0].isdigit())
    return f"{row.get('seeds') or 0}/{total or '?'} done"


def paper_view(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Our figures with Table 2's in brackets beside them ("91.2 [99.3]"), in % with one decimal (the loss
    as itself); a
    'runs' column only where a row did not complete. Fits a 100-column terminal."""
    paper = {p["model"]: p for p in paper_table()}
    view = []
    for row in rows:
        theirs = paper.get(row["architecture"], {})
        shown = {"model": row["model"], "runs": "all done" if row.get("status") == "COMPLETED" else _runs_done(row)}
        for metric in COMPARED:
            shown[metric] = _pair(row.get(metric), theirs.get(metric), metric)
        view.append(shown)
    columns = ["model", *COMPARED]
    if any(r["runs"] != "all done" for r in view):
        columns.append("runs")
    return view, columns
