"""segbench: a reproducible training-speed benchmark for the CV-net segmentation model."""

__version__ = "0.1.0"
