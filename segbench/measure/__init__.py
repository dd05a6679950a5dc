"""Measurement: the run pipeline and its timed training loop, the Keras backend and generation,
data-parallel runs, telemetry, the peak probe and FLOPs, the numerics check, the profiler and
segbench tune's search."""
