"""Every benchmark prints one JSON line and keeps it under benchmarks/results/, with the machine it ran on."""
import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing


def machine() -> dict:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"host": platform.node(), "cpus": len(os.sched_getaffinity(0)), "cpu": platform.processor() or platform.machine(),
            "gpu": gpu, "torch": torch.__version__}


def emit(name: str, figures: dict) -> dict:
    line = {"benchmark": name, **figures, "machine": machine(), "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    text = json.dumps(line)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    stamp = line["when"].replace(":", "").replace("+0000", "Z")
    (RESULTS / f"{name}-{platform.node()}-{stamp}.json").write_text(text + "\n")
    return line
