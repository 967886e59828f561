"""Entry points to run a sweep's jobs by hand, on a node or a workstation (the backends submit the
same callables, from harness.cluster.node):

    python -m jobs.preprocess SWEEP_DIR          build the sweep's image caches
    python -m jobs.train SWEEP_DIR RUN_ID...     train and evaluate these runs, one after another
"""
