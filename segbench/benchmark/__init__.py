"""The benchmark definition (benchmark §1–§3, §5): the presets, the CV-net model, its loss and
metrics, its initial weights, the triangles data set, the published reference figures, and the
other models a run can train (--model)."""
