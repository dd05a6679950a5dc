"""The segbench command line — the only layer that prints: the typer app with its commands,
registered here in the order `segbench --help` lists them.

Every error leaves through `_Commands.invoke` (segbench/cli/app.py), which maps it to its exit
code with EXIT_CODES.
"""

from __future__ import annotations

from segbench.cli.app import EXIT_CODES, _sigterm, app, entry, exit_code
from segbench.cli.compare import compare_command
from segbench.cli.doctor import data, doctor_command
from segbench.cli.plot import plot_command
from segbench.cli.report import report_command
from segbench.cli.reproduce import reproduce_command
from segbench.cli.run import launch_command, run, show_command
from segbench.cli.submit import submit_command
from segbench.cli.tune import tune_command

__all__ = ["EXIT_CODES", "_sigterm", "app", "entry", "exit_code"]

app.command("data")(data)
app.command("doctor")(doctor_command)
app.command("run")(run)
app.command("show")(show_command)
# launch passes what follows `--` (`run ARGS…`) on to its workers as it is.
app.command("launch", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
    launch_command
)
app.command("compare")(compare_command)
app.command("reproduce")(reproduce_command)
app.command("tune")(tune_command)
app.command("plot")(plot_command)
app.command("report")(report_command)
app.command("submit")(submit_command)
