"""The results folder, beneath everything: paths, the spec and record dataclasses, submissions,
safe writes. Imports nothing heavier than the standard library."""
