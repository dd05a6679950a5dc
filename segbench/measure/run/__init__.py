"""One run: the pipeline (checks → data → timed run → result → file), its timed training loop,
the compiled model, the progress it reports and the signals it defers until the result is saved."""
