"""The statistics of a result: detection metrics, paired tests between models, intervals."""
