"""python -m jobs.train SWEEP_DIR RUN_ID...: these runs of the sweep, one after another, in this process."""
import sys
from pathlib import Path

from harness.cluster.node import RunTaken, Train

if __name__ == "__main__":
    for rid in sys.argv[2:]:
        try:
            Train(Path(sys.argv[1]))(rid)
        except RunTaken as taken:  # held by a job, or done: said, and the next run goes on
            print(taken, file=sys.stderr)
