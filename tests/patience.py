"""How long a test lets a process or a wait run before it calls it hung.

A guard against a hang, never a time limit (no test asserts a time). It is generous because CI runs the
oldest environment's unit tests at nice 19 beside the README's pytest, where a Python that imports torch
gets a sliver of the CPU: a command that ends in 5 s alone took over 120 s there."""
HUNG_S = 900
