"""The commands that prepare a machine: `segbench data` writes the data set, `segbench doctor`
checks the environment."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from segbench.benchmark.config import PRESETS
from segbench.cli.app import exit_code
from segbench.cli.console import stderr, stdout
from segbench.cli.options import (
    Backend,
    CpuReplicasOption,
    DeviceChoice,
    Expect,
    GpusOption,
    Precision,
    Preset,
    StrategyOption,
    choice_value,
    folder_path,
)
from segbench.errors import BadInput, Unavailable


def data(
    out: Annotated[
        Path | None,
        typer.Option(
            parser=folder_path,
            metavar="<path>",
            help="Folder to write the data set into (new or empty). Default: the cache.",
        ),
    ] = None,
) -> None:
    """Write the triangles data set: 600 image/mask PNG pairs plus train.csv and validation.csv."""
    from segbench.benchmark import triangles

    target = out if out is not None else triangles.default_data_dir()
    if out is None and (target / triangles.TRAIN_CSV).is_file():
        # The cache holds it already (a run checks its digest before using it).
        stdout.print(f"the triangles data set is already in {target}", highlight=False)
        return
    where = f"--out {target}" if out is not None else f"the cache {target}"
    for path in (target, *target.parents):
        if path.is_symlink() and not path.exists():
            what = "a broken symbolic link"
        elif path.exists() and not path.is_dir():
            what = "a file, not a folder"
        else:
            continue
        fix = "set SEGBENCH_CACHE to a folder" if out is None else "choose a new or empty folder"
        raise BadInput(f"{where}: {path} is {what}; {fix}")
    try:
        triangles.generate(target)
    except FileExistsError as e:
        raise BadInput(f"--out: {e}") from None
    except OSError as e:
        raise Unavailable(f"--out {target}: cannot write ({e.strerror or e})") from None
    stdout.print(f"wrote {triangles.COUNT} image/mask pairs to {target}")


def doctor_command(
    expect: Annotated[
        Expect | None,
        typer.Option(help="gpu: a missing GPU is a FAIL; cpu: a visible GPU is a FAIL."),
    ] = None,
    preset: Annotated[Preset, typer.Option(help="Preset whose memory need is checked.")] = "quick",
    device: Annotated[DeviceChoice, typer.Option(help="Device the run will use.")] = "auto",
    precision: Annotated[Precision, typer.Option(help="Precision the run will use.")] = "float32",
    xla: Annotated[
        bool,
        typer.Option(
            "--compile/--no-compile", "--xla/--no-xla", help="Whether the run will compile steps."
        ),
    ] = False,
    backend: Annotated[
        Backend, typer.Option(envvar="KERAS_BACKEND", help="Keras backend.")
    ] = "tensorflow",
    out: Annotated[
        Path,
        typer.Option(
            envvar="SEGBENCH_OUT",
            parser=folder_path,
            metavar="<path>",
            help="Results folder whose free disk is checked.",
        ),
    ] = Path("results"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
    strategy: StrategyOption = "none",
    gpus: GpusOption = None,
    cpu_replicas: CpuReplicasOption = None,
) -> None:
    """Check the environment and say exactly what to fix (exit 1 when a check FAILs).
    With --strategy multiworker, also TF_CONFIG, this task's port and the other workers."""
    from segbench.measure import backend as backends

    backends.select_backend(choice_value(backend), import_now=False)  # doctor probes it first
    from dataclasses import asdict

    from segbench import doctor, package_data
    from segbench.benchmark import triangles
    from segbench.report.tables import doctor_table

    package_data.verify()  # a damaged install: one line saying to reinstall, not a table

    workload = PRESETS[choice_value(preset)]
    context = doctor.Context(
        preset=workload.preset,
        width=workload.width,
        batch_size=workload.batch_size,
        epochs=workload.epochs,
        device=choice_value(device),
        precision=choice_value(precision),
        xla=xla,
        expect=choice_value(expect) if expect else None,
        folders=(str(triangles.default_data_dir()), str(out)),
        strategy=choice_value(strategy),
        gpus=gpus,
        replicas=cpu_replicas or 1,  # each a copy of the model in host memory
    )
    with stderr.status("checking the environment"):
        checks = doctor.run_checks(doctor.gather(context), context)
    if as_json:
        sys.stdout.write(json.dumps({"checks": [asdict(c) for c in checks]}, indent=2) + "\n")
    else:
        stdout.print(doctor_table(checks))
    failures = doctor.failed(checks)
    if failures:
        stderr.print(
            f"[red]{len(failures)} check(s) failed:[/red] {', '.join(c.id for c in failures)}",
            highlight=False,
        )
        raise typer.Exit(exit_code(Unavailable()))
