"""Training and evaluating one run: config (no torch), run (the step and epochs), evaluate, record, train."""
