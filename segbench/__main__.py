"""`python -m segbench` runs the command line."""

try:
    from segbench.cli import entry
except KeyboardInterrupt:  # Ctrl-C (or a signal passed on) before the command line is in place
    import sys

    from segbench.errors import forget_handled_interrupt

    forget_handled_interrupt()
    sys.stderr.write("error: interrupted while segbench started; nothing was done\n")
    raise SystemExit(130) from None

entry()
