"""python -m jobs.train SWEEP_DIR RUN_ID...: these runs of the sweep, one after another, in this process."""
import sys
from pathlib import Path

from harness.cluster.jobs import Train

if __name__ == "__main__":
    for rid in sys.argv[2:]:
        Train(Path(sys.argv[1]))(rid)
