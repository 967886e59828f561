"""What runs on the cluster's nodes: the preprocessing job and the training tasks, as submitit callables.

Each job reads its orders from the sweep's sweep.json; its pickle carries only the sweep folder.
"""
import logging
import sys


def configure_logging() -> None:
    """One timestamped line per event in the job's log (submitit captures stdout and stderr)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
