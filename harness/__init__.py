"""harness: a SLURM-native benchmark harness for deep-fake face detectors."""

from harness.version import __version__

__all__ = ["__version__", "load"]


def __getattr__(name: str) -> object:
    """harness.load (harness.api.load: a sweep's results as pandas frames), imported on first use, so that
    `python -m harness status` stays light."""
    if name == "load":
        from harness.api import load

        return load
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
