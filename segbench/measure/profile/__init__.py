"""Where a training step's time goes: the framework's profiler per backend, each op's self time
attributed to the kind of layer that ran it, and the record kept in the result."""
