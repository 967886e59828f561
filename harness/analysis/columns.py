"""What the leaderboard may rank by: every figure of the registry, the parameter count and the name;
plain names, so that `--help` lists the choices without importing the leaderboard."""
from harness.store.figures import FIGURES

SORTABLE = [*FIGURES, "params", "model"]
# What the accuracy's interval is about: new seeds and new test units drawn as these were, or new seeds on this
# test set (analysis.variance)
POPULATIONS = ("new-test-set", "this-test-set")
