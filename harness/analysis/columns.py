"""What the leaderboard may rank by: every figure of the registry, the parameter count and the name;
plain names, so that `--help` lists the choices without importing the leaderboard."""
from harness.store.figures import FIGURES

SORTABLE = [*FIGURES, "params", "model"]
