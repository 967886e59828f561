"""Honest measurements: timing, GPU use and energy (meters), FLOPs and MFU (flops), the system a run saw (system)."""
