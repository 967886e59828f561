"""harness: a SLURM-native benchmark harness for deep-fake face detectors."""

__version__ = "0.1.0"
