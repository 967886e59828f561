"""python -m jobs.preprocess SWEEP_DIR: the sweep's preprocessing step, in this process."""
import sys
from pathlib import Path

from harness.cluster.node import Preprocess

if __name__ == "__main__":
    Preprocess(Path(sys.argv[1]))()
