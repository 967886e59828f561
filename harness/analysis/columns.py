"""The leaderboard's columns and what it may rank by: plain names, so that `--help` lists the choices
without importing the leaderboard."""

METRICS = ["accuracy", "loss", "precision", "recall", "f1", "auc"]
EXTRA_METRICS = ["average_precision", "eer", "accuracy_at_threshold"]
THROUGHPUT = ["train_images_per_s", "infer_images_per_s"]
COLUMNS = ["model", "params", *METRICS, *THROUGHPUT, "gpu_util_mean", "status"]
SORTABLE = [*METRICS, *EXTRA_METRICS, *THROUGHPUT, "gpu_util_mean", "params", "model"]
LOWER_IS_BETTER = {"loss", "eer", "model"}
# What the accuracy's interval is about: new seeds and new test units drawn as these were, or new seeds on this
# test set (analysis.variance)
POPULATIONS = ("new-test-set", "this-test-set")
