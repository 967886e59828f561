"""The harness's version: a leaf that every module may import (the package's face, harness/__init__.py,
imports the public API above them all)."""

__version__ = "0.1.0"
