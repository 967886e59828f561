"""harness: a SLURM-native benchmark harness for deep-fake face detectors."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """harness.load (harness.api.load: a sweep's results as pandas frames), imported on first use, so that
    `python -m harness status` stays light."""
    if name == "load":
        from harness.api import load

        return load
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
