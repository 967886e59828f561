"""The site dashboard, rendered in a real browser (headless Chromium): every part present, no empty panel."""
import base64
import io
import re
import subprocess
from dataclasses import replace

import numpy as np
from PIL import Image

from harness.analysis.report import HPC_TITLE
from harness.store.perflog import append_entry

from perf_helpers import entry, make_sweep, record

P100 = {"cluster": "marwan", "partition": "gpu", "gpu_name": "Tesla P100-PCIE-16GB", "gpu_count": 1}
CPU = {"cluster": "local", "partition": "local", "gpu_name": None, "gpu_count": 0}


def _log(results, sweep, month, system, model, speed, auc, energy):
    made = entry(f"{model}-s0", speed, sweep=sweep, time=f"2026-{month:02d}-01T00:00:00+00:00", system=system)
    figures = {**made.figures, "auc": {"value": auc, "unit": "fraction"}, "wall_time_s": {"value": 1800.0, "unit": "s"},
               "energy_per_image_j": {"value": energy, "unit": "J/image"}}
    append_entry(results, replace(made, architecture=model, figures=figures))


def browse(chromium, page, *options):
    return subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *options,
                           page.as_uri()], capture_output=True, text=True, timeout=120)


def inked(png: bytes) -> float:
    """The share of a picture's pixels that are not background white."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    return float((pixels < 245).mean())


def test_the_dashboard_renders_whole_in_a_browser(cli, tmp_path, chromium):
    results = tmp_path / "results"
    for month, (model, speed, auc, energy) in enumerate([("ResNet50", 400.0, 0.95, 0.02), ("MobileNetV2", 900.0, 0.90, 0.01),
                                                         ("VGG16", 300.0, 0.93, 0.05)], 1):
        _log(results, f"p-{month}", month, P100, model, speed, auc, energy)
        _log(results, f"p-{month + 3}", month + 3, P100, model, speed * 1.1, auc, energy)
        _log(results, f"c-{month}", month, CPU, model, speed / 20, auc - 0.01, None)
    make_sweep(results, "latest", [record(m, sweep="latest", accuracy=a) for m, a in (("ResNet50", 0.95), ("VGG16", 0.9))])
    references = tmp_path / "refs.toml"
    references.write_text('[systems."marwan:gpu:*P100*".ResNet50]\ntrain_images_per_s = { value = 420.0, lower = -0.10 }\n'
                          '[ResNet50]\naccuracy = { value = 0.95, lower = -0.05, upper = 0.05 }\n'
                          '[VGG16]\naccuracy = { value = 0.99, lower = -0.05, upper = 0.05 }\n')
    page = tmp_path / "site.html"
    made = cli("dashboard", "--out", page, "--references", references, "--results", results)
    assert made.code == 0 and made.out.strip() == str(page), made.err

    dom = browse(chromium, page, "--dump-dom")
    assert dom.returncode == 0 and "<h1>harness dashboard" in dom.stdout, dom.stderr[-2000:]
    for part in ("Trends per architecture and system", "Detection quality against cost", "Leaderboard of the latest sweep, latest",
                 "Check of the latest sweep", "ResNet50", "VGG16", "pass", "no reference"):
        assert part in dom.stdout, part
    # what needs attention opens the page: VGG16's accuracy, 0.90 against 0.99 less 5%, before any trend
    headings = re.findall(r"<h2>([^<]+)</h2>", dom.stdout)
    assert headings[:2] == ["Needs attention", "Trends per architecture and system"], headings
    attention = dom.stdout[dom.stdout.index("Needs attention"):dom.stdout.index("Trends per architecture")]
    assert "VGG16" in attention and "FAIL" in attention and "ResNet50" not in attention
    figures = re.findall(r'<img alt="[^"]+" src="data:image/png;base64,([^"]+)"', dom.stdout)
    assert len(figures) == 2
    for png in figures:
        assert inked(base64.b64decode(png)) > 0.02  # drawn, not an empty frame

    shot = tmp_path / "shot.png"
    taken = browse(chromium, page, f"--screenshot={shot}", "--window-size=1400,2400")
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    assert inked(shot.read_bytes()) > 0.02


def test_the_report_renders_leaderboard_first_in_a_browser(cli, tmp_path, tiny_demo, chromium):
    results = tmp_path / "results"
    # the paper's MobileNetV2 and timm's resnet10t, by one worker: a ResNet50 run would cost four of either
    sweep = cli("sweep", "--cluster", "local", "--max-parallel", "1", "--dataset", tiny_demo, "--models", "MobileNetV2,resnet10t",
                "--epochs", "1", "--image-size", "32", "--results", results, "--name", "shown", "--wait")
    assert sweep.code == 0, sweep.err
    made = cli("report", "--results", results)
    page = results / "shown" / "report.html"
    assert made.code == 0 and made.out.strip() == str(page), made.err

    dom = browse(chromium, page, "--dump-dom").stdout
    headings = re.findall(r"<h2[^>]*>([^<]+)</h2>", dom)
    # the first screen: the leaderboard, then the HPC figures, each with its unit, and why a null one is not
    # measured; the settings last, folded
    assert headings[:2] == ["Leaderboard", HPC_TITLE], headings
    hpc = dom[dom.index(headings[1]):dom.index("</table>", dom.index(headings[1]))]
    for label, unit in (("train img/s", "images/s"), ("GPU util", "%"), ("MFU", "%"), ("train J/image", "J/image"),
                        ("queue wait", "s"), ("GPU-hours", "GPU-h")):
        assert re.search(rf"<td>{re.escape(label)}</td><td>{re.escape(unit)}</td>", hpc), label
    assert "not measured" in hpc and "no NVIDIA GPU in use" in hpc
    assert headings[-2:] == ["Settings", "Each architecture's own settings (where it overrides the sweep's, or the sweep "
                                         "leaves it to the architecture)"] and "<details><summary><h2" in dom
    assert "loss %" not in dom and "loss (BCE)" in dom  # a cross-entropy is no percentage
    assert re.search(r"<td>MobileNetV2</td>", dom) and re.search(r'<td class="number">[0-9.]+ ?(\[[^<]*\])?</td>', dom)
    assert "<pre>" not in dom  # the settings are a table, not a JSON dump
    figures = re.findall(r'<img alt="[^"]+" src="data:image/png;base64,([^"]+)"', dom)
    assert len(figures) >= 3 and all(inked(base64.b64decode(png)) > 0.02 for png in figures)
    shot = tmp_path / "report.png"
    assert browse(chromium, page, f"--screenshot={shot}", "--window-size=1300,2000").returncode == 0
    assert inked(shot.read_bytes()) > 0.02
