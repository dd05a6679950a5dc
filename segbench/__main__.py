"""`python -m segbench` runs the command line."""

from segbench.cli import entry

entry()
