"""`segbench tune`: the search for the fastest settings, its ranking, chart and result file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segbench.benchmark.config import PRECISIONS, PRESETS
from segbench.cli.console import note, print_path, stdout
from segbench.cli.options import (
    Backend,
    DeviceOption,
    OutOption,
    Precision,
    PresetOption,
    choice_value,
    file_path,
)
from segbench.errors import BadInput, Unavailable, stopped
from segbench.measure.backend import BACKENDS


def tune_command(
    preset: PresetOption = "quick",
    budget: Annotated[
        float,
        typer.Option(
            min=0.5,
            max=24 * 60,
            help="Minutes to spend: no trial starts that is expected to overrun it; one started "
            "is stopped after 1.5× the minutes left, plus 30 s.",
        ),
    ] = 20.0,
    steps: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Timed steps of a full trial (default: 4 smoke, else 10); a short trial "
            "runs a quarter of them, at least 2.",
        ),
    ] = None,
    warmup: Annotated[
        int | None, typer.Option(min=0, help="Warm-up steps of each trial (default: 1).")
    ] = None,
    trials: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Try at most this many settings, the default included (default: as many "
            "as the budget allows).",
        ),
    ] = None,
    device: DeviceOption = None,
    backends: Annotated[
        list[Backend] | None,
        typer.Option(
            "--backend",
            metavar=f"[{'|'.join(BACKENDS)}]",
            help="Search only this backend (repeatable; default: all).",
        ),
    ] = None,
    precisions: Annotated[
        list[Precision] | None,
        typer.Option(
            "--precision",
            metavar=f"[{'|'.join(PRECISIONS)}]",
            help="Search only this precision (repeatable; default: all).",
        ),
    ] = None,
    out: OutOption = Path("results"),
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            parser=file_path,
            metavar="<path>",
            help="PNG of images/s against J/image (or ms/step); default: beside the result file.",
        ),
    ] = None,
) -> None:
    """Search the settings that change speed (backend, precision, compiled step, batch-norm
    kernel, channels layout, batch size) by successive halving: the default in full, every
    other setting a few steps, those that can still win in full. Rank them and print the
    fastest's command line.
    The fastest trial's result, with every trial in its `tune` block, is written to --out."""
    from segbench.measure.run import out_folder
    from segbench.report.plot import writable_target

    out_folder.check_out_name(out)
    if plot is not None:
        if plot.suffix.lower() != ".png":
            raise BadInput(f"--plot {plot}: a chart is a PNG; choose a .png name")
        writable_target(plot, "--plot")
        if not plot.parent.is_dir():
            raise BadInput(f"--plot {plot}: no folder {plot.parent}; create it or choose another")
    created = out_folder._missing(out)
    try:
        out_folder.check_writable(out)
        # Every trial's result stays in memory; the file is the winner's with every trial's
        # summary, and its chart: a few MiB at most.
        out_folder.check_free_space(out, 4 * 2**20)
        _tune(preset, budget, steps, warmup, trials, device, backends, precisions, out, plot)
    except BaseException:
        out_folder._remove_if_empty(out, created)  # nothing written: no folder left behind
        raise


def _tune(preset, budget, steps, warmup, trials, device, backends, precisions, out, plot) -> None:
    """segbench tune, once its options are checked."""
    import tempfile
    from dataclasses import replace

    import psutil

    from segbench.measure import tune, tune_session
    from segbench.measure.run import pipeline
    from segbench.report.tune import tune_points, tune_table, verdict_lines
    from segbench.results.result import result_stem, to_json_text

    name = choice_value(preset)
    full_steps, warmup_steps = tune.trial_steps(name, steps, warmup)
    extra = [] if device is None else ["--device", choice_value(device)]

    def notify(event, phase, index, total, setting, trial, steps):
        if event == "start":
            left = f"{max(session.left_s(), 0) / 60:.1f} min of the budget left"
            counted = f"{steps} step" + ("s" if steps != 1 else "")
            note(f"{phase} {index + 1}/{total}: {setting.label}, {counted} ({left})")
        elif trial.images_per_s is not None:
            said = f"  {trial.images_per_s:.3g} images/s, numerics {trial.numerics}"
            if trial.status == tune_session.SHORT:
                said += ": can still win, to be run in full"
            elif trial.status != "ran":
                said += f"; {trial.status}: {trial.reason}"
            note(said)
        else:
            note(f"  {trial.status}: {trial.reason}")

    with tempfile.TemporaryDirectory(prefix="segbench-tune-") as work:
        session = tune_session.Session(
            name, budget * 60, full_steps, warmup_steps, extra, Path(work), notify, trials
        )
        planned = tune.plan(
            PRESETS[name],
            tune.installed_backends(),
            [choice_value(b) for b in backends or []],
            [choice_value(p) for p in precisions or []],
        )
        info = session.run(planned, psutil.virtual_memory().available)
        if info.trials:  # none when stopped before the first trial began
            stdout.print(tune_table(info))
        for line in verdict_lines(info):
            stdout.print(line, markup=False, highlight=False, soft_wrap=True)
        _tune_profiles(info, session)
        if info.fastest is None:
            if info.stopped_by not in (None, "budget"):
                raise stopped(info.stopped_by)(
                    "interrupted before a trial finished: nothing written"
                )
            raise Unavailable("segbench tune: no trial ran to the end; nothing written")
        winner, _ = session.results[info.fastest]
        document = replace(winner, tune=info)
        stem = "segbench-tune-" + result_stem(document).removeprefix("segbench-")
        text = to_json_text(document)
        written, problem = pipeline.save_text(out, stem, text)
    if written is None:  # no folder took it: the result on stdout, never lost
        stdout.out(text, end="", highlight=False)
        raise Unavailable(f"{problem}; nor could any other folder: the result is printed above")
    print_path(stdout, "result written to", written)
    if problem:  # the chart goes beside the result, where it was saved instead
        try:
            _tune_chart(info, plot or written.with_suffix(".png"), tune_points(info))
        except Unavailable as chart:
            problem += f"; {chart}"
        raise Unavailable(f"{problem}; the tune result was saved to {written}")
    _tune_chart(info, plot or written.with_suffix(".png"), tune_points(info))
    if info.stopped_by not in (None, "budget"):
        raise stopped(info.stopped_by)(f"interrupted: what was tried is in {written}")


def _tune_profiles(info, session) -> None:
    """Where the step time goes for the default setting and the winner (--profile)."""
    from segbench.measure.tune import setting_of
    from segbench.report.tables import profile_table

    shown = [info.default] if info.fastest in (None, info.default) else [info.default, info.fastest]
    for index in shown:
        result = session.results.get(index, (None, None))[0]
        if result is None or result.profile is None:
            continue
        label = setting_of(session.trials[index]).label
        stdout.print(f"#{index + 1} {label}:", markup=False, highlight=False)
        stdout.print(profile_table(result))


def _tune_chart(info, target: Path, points) -> None:
    """Draw tune's chart where matplotlib is installed; say how to get it where not."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        note("no chart: matplotlib is not installed (uv sync --extra plot)")
        return
    from segbench.report.tune_chart import plot_tune

    try:
        written = plot_tune(points, target, f"segbench tune — {info.preset} preset")
    except OSError as e:
        raise Unavailable(f"--plot {target}: cannot write the chart ({e.strerror or e})") from None
    print_path(stdout, "chart written to", written)
