"""The child process of the import probe (probe.py): `python -m segbench.doctor.probe_child
BACKEND`. A module of its own, so that running it does not re-run a module already imported."""

import sys

from segbench.doctor.probe import main

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tensorflow")
