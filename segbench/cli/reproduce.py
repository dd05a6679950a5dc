"""`segbench reproduce`: rerun the run a result file records, on this machine, and say whether
its number was reproduced."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import shlex
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from segbench.cli.console import note, stdout
from segbench.cli.options import DataDirOption, DeviceOption, OutOption, choice_value
from segbench.errors import BadInput, Regression, Unavailable

if TYPE_CHECKING:
    from segbench.results.reproduction import Fact, Side


def reproduce_command(
    result_file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A result file (segbench run --out …).")
    ],
    out: OutOption = Path("results"),
    tolerance: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=100.0,
            help="Percent the rerun's median time per image may differ by on the same hardware.",
        ),
    ] = 5.0,
    exact: Annotated[
        bool,
        typer.Option(
            "--exact", help="Refuse to run with another segbench commit or lock than the file's."
        ),
    ] = False,
    device: DeviceOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Rerun the run FILE records (its preset, settings, seed, backend and precision) on this
    machine and compare: the speedup with its 95 % CI, what differs, and a verdict (exit 3
    when the same hardware does not reproduce the number)."""
    from segbench.results.result import load_result

    original = load_result(result_file)
    config = _config_of(original, result_file, choice_value(device) if device else None)
    _check_version(original, result_file, exact)
    _check_model(original, result_file)
    data_sha256 = _check_data(original, result_file, data_dir)
    from segbench.results.reproduction import facts

    _print_facts(
        f"{result_file} beside this machine, before the rerun",
        facts(original, _this_machine(original, config, data_sha256)),
    )
    if original.tune is not None:
        note(
            f"note: {result_file} is a segbench tune session's result: this reruns its winner "
            f"only (one run of its setting), not the {len(original.tune.trials)} trials; "
            f"`segbench tune --preset {original.config.preset}` searches again"
        )
    if original.status == "interrupted":
        note(
            f"note: {result_file} is partial (interrupted by {original.interrupted_by} after "
            f"{original.summary.steps} timed step(s)): its figures cover only those"
        )
    moved = device is not None and config.device != original.device.kind
    if moved:
        note(
            f"note: --device {config.device}: {result_file} ran on {original.device.kind}; "
            "the rerun is not the same configuration (marked so in its result; no verdict)"
        )
    rerun = _rerun(original, result_file, config, data_dir, out, moved)
    _verdict(original, rerun, result_file, tolerance, moved)


def _this_machine(original: Any, config: Any, data_sha256: str) -> Side:
    """This machine's facts before anything runs (the framework is not imported: its version
    is the installed one; the device is named as nvidia-smi or the CPU name it)."""
    from segbench import __version__
    from segbench.results.caveats import power_state_of
    from segbench.results.environment import (
        cpu_model,
        fingerprint,
        git_commit,
        nvidia_smi,
        package_version,
    )
    from segbench.results.reproduction import AT_THE_RERUN, Side

    nvidia = nvidia_smi() if config.device != "cpu" else None
    # Without importing the framework: its build's CUDA/cuDNN are read at the rerun.
    stack = {key: AT_THE_RERUN for key in original.environment.gpu_stack if "version" in key}
    if nvidia and "driver_version" in nvidia:
        stack["nvidia_driver"] = nvidia["driver_version"]
    if package_version("tensorflow-metal"):
        stack["tensorflow_metal"] = package_version("tensorflow-metal")
    here = fingerprint([], config.backend or original.environment.keras_backend, stack)
    if config.device == "gpu" or (config.device is None and nvidia):
        device = (nvidia or {}).get("name") or "a GPU (named once the framework starts)"
    else:
        limit = here.cpu.container_cpus
        shown = f" (container: {limit:g})" if limit else ""
        device = f"CPU: {cpu_model()} × {here.cpu.logical_cores}{shown}"
    return Side(
        segbench_version=__version__,
        git_commit=git_commit(),
        environment=here,
        config=config,
        device=device,
        data_sha256=data_sha256,
        power=power_state_of(_power_check()),
    )


def _power_check() -> Any:
    """doctor's power check on this machine now."""
    from segbench.doctor.gather import power_facts
    from segbench.doctor.hardware import check_power

    battery, low_power_mode, _, mode = power_facts()
    return check_power(battery, low_power_mode, mode)


def _print_facts(title: str, found: list[Fact]) -> None:
    """The facts table: each row same, differs (and what that means), or cannot be checked."""
    from rich.table import Table
    from rich.text import Text

    from segbench.report.printable import printable

    table = Table(title=title, title_justify="left")
    for column in ("fact", "in the file", "here", ""):
        table.add_column(column)
    for fact in found:
        cells = (fact.name, fact.original, fact.here, fact.judgement)
        table.add_row(*(Text(printable(c)) for c in cells))  # a file's text, never markup
    stdout.print(table)


def _config_of(original: Any, file: Path, device: str | None) -> Any:
    """The file's configuration, checked against its own steps (a hand-edited file is refused),
    with --device where given."""
    from segbench.benchmark.config import PRESETS
    from segbench.measure.run import pipeline
    from segbench.results.stats import timed_steps

    config = original.config
    if config.preset not in PRESETS:
        raise BadInput(
            f"{file}: its preset {config.preset!r} is none of {', '.join(PRESETS)}: the file "
            "was edited after its run, or made by another segbench"
        )
    timed = timed_steps(config, original.steps)
    per_step = {s.images for s in timed if s.training}
    if config.epochs == 0 and per_step and per_step != {config.batch_size}:
        raise BadInput(
            f"{file}: its config says batch {config.batch_size}, its timed steps took "
            f"{', '.join(map(str, sorted(per_step)))} images: the file was edited after its "
            "run; rerun from an unedited file"
        )
    expected = config.steps * config.repeats
    if config.epochs == 0 and original.status == "complete" and len(timed) != expected:
        raise BadInput(
            f"{file}: its config says {config.steps} timed step(s) × {config.repeats} "
            f"repeat(s), it holds {len(timed)}: the file was edited after its run; rerun from "
            "an unedited file"
        )
    if config.strategy is not None:
        raise Unavailable(
            f"{file}: a data-parallel run ({config.strategy}); reproduce runs on one device: "
            "rerun it with segbench launch or on the machines it names"
        )
    if device is not None:
        config = replace(config, device=device)
    elif original.device.kind == "gpu":
        config = replace(config, device="gpu")  # the file's device, not whatever is here
    try:
        return pipeline.validated(config)
    except BadInput as e:
        raise BadInput(f"{file}: its config cannot run: {e}") from None


def _check_version(original: Any, file: Path, exact: bool) -> None:
    """Say, before anything runs, when the file came from another segbench; --exact refuses."""
    from segbench import __version__
    from segbench.results.environment import git_commit, lock_sha256

    here, lock = git_commit(), lock_sha256()
    theirs, their_lock = original.git_commit, original.environment.uv_lock_sha256
    if theirs == here and their_lock == lock and original.segbench_version == __version__:
        return
    what = (
        f"{file} was made by segbench {original.segbench_version} at commit "
        f"{theirs or 'unknown'} (uv.lock {(their_lock or 'unknown')[:12]}); this is "
        f"{__version__} at {here or 'unknown'} (uv.lock {(lock or 'unknown')[:12]})"
    )
    url = original.source_url or ""
    if theirs is None or not re.fullmatch(r"[0-9a-f]{40}", theirs) or not _fetchable(url):
        how = "no exact version can be fetched (no clean commit and source URL recorded)"
    else:
        how = "that version: " + " && ".join(
            [
                f"git clone -- {shlex.quote(url)} segbench-{theirs[:12]}",
                f"cd segbench-{theirs[:12]}",
                f"git checkout {theirs}",
                f"uv run segbench reproduce {shlex.quote(str(Path(file).absolute()))}",
            ]
        )
    if exact:
        raise Unavailable(f"--exact: {what}; {how}")
    note(f"note: {what}; speed and numerics may differ for that alone; {how}")


def _fetchable(url: str) -> bool:
    """A URL git can be given safely on a command line: a scheme or host path, no option, no
    blank or control character."""
    return bool(
        re.fullmatch(r"(https?|ssh|git)://[^\s\x00-\x1f\x7f]+|[\w.-]+@[\w.-]+:[^\s\x00-\x1f]+", url)
    )


def _check_model(original: Any, file: Path) -> None:
    """A user's model must be the file's: its source's digest."""
    own = original.model.own
    if own is None or own.source_sha256 is None:
        return
    target = own.spec.rpartition(":")[0]
    if target.endswith(".py") or "/" in target:
        source = Path(target).expanduser()
    else:
        found = importlib.util.find_spec(target) if target else None
        source = Path(found.origin) if found and found.origin else None
    if source is None or not source.is_file():
        raise BadInput(
            f"{file}: --model {own.spec}: its source is not here; put it back at {target}"
        )
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if digest != own.source_sha256:
        raise BadInput(
            f"{file}: --model {own.spec}: {source} has sha256 {digest[:12]}…, the file's model "
            f"{own.source_sha256[:12]}…: not the model that was measured"
        )


def _check_data(original: Any, file: Path, data_dir: Path | None) -> str:
    """The data set must be the file's: the triangles' digest, or --data with the same one;
    the digest of the data the rerun will train on."""
    from segbench.benchmark import triangles

    if original.model.own is not None and original.data.folder == "synthetic":
        return original.data.sha256  # the model's own synthetic samples, drawn from the seed
    unknown = original.data.sha256 is None  # made before data digests were recorded
    if unknown:
        note(
            f"note: {file} records no data digest (an older file): that the data are the "
            "same cannot be checked"
        )
    if data_dir is None and original.data.generated:
        if not unknown and original.data.sha256 != triangles.TRIANGLES_SHA256:
            raise BadInput(
                f"{file}: its triangles have sha256 {original.data.sha256[:12]}…, this segbench "
                f"generates {triangles.TRIANGLES_SHA256[:12]}…: another recipe; rerun with the "
                "file's segbench version"
            )
        return triangles.TRIANGLES_SHA256
    if data_dir is None:
        raise BadInput(
            f"{file}: it trained on its own data ({original.data.folder}): give that folder "
            "with --data DIR"
        )
    try:
        train, validation = triangles.load_dataset(data_dir, original.config.image_size, 0)
    except triangles.DataError as e:
        raise BadInput(f"--data: {e}") from None
    digest = triangles.dataset_sha256(train, validation)
    if not unknown and digest != original.data.sha256:
        raise BadInput(
            f"--data {data_dir}: sha256 {digest[:12]}…, the file's data {original.data.sha256[:12]}"
            "…: not the data that was measured"
        )
    return digest


def _rerun(
    original: Any, file: Path, config: Any, data_dir: Path | None, out: Path, moved: bool
) -> Any:
    """The run, as `segbench run` does it (progress, tables, the result file, Ctrl-C); its
    result records the file it reran and whether its configuration is the file's."""
    from segbench.cli.run import _measure, _report
    from segbench.measure import backend
    from segbench.measure.run import pipeline
    from segbench.results.result import Reproduces

    changed = [f"device: {original.device.kind} → {config.device}"] if moved else []
    reproduces = Reproduces(
        file=file.name,
        sha256=hashlib.sha256(file.read_bytes()).hexdigest(),
        same_configuration=not changed,
        changed=changed,
    )
    stdout.print(f"segbench reproduce — rerunning {file}", highlight=False, markup=False)
    try:
        outcome = _measure(config, data_dir, out, False, pipeline.Instruments(), reproduces)
    except backend.DeviceError as e:
        if original.device.kind == "gpu" and config.device == "gpu":
            raise Unavailable(
                f"{file} ran on {original.device.description}; {e}: --device cpu makes the "
                "nearest run (not the same configuration: no reproduction verdict)"
            ) from None
        raise
    _report(outcome, False)  # an interrupted rerun ends here, its partial result kept
    return outcome.result


def _verdict(original: Any, rerun: Any, file: Path, tolerance: float, moved: bool) -> None:
    from segbench.results.reproduction import NOT_REPRODUCED, facts, judge

    found = facts(original, rerun)  # as the rerun recorded them (the device by its framework)
    differing = [f for f in found if f.recorded and not f.same]
    if differing:
        _print_facts(f"{file} beside this rerun: what differs", differing)
    else:
        stdout.print("every fact the file records is the same in the rerun", highlight=False)
    verdict = judge(original, rerun, tolerance)
    speed = verdict.speed_line
    if moved:
        speed = (
            f"not the same configuration (--device {rerun.config.device}): the rerun is "
            f"{verdict.difference.speedup:.3g}× as fast; no reproduction verdict"
        )
    stdout.print(f"speed: {speed}", highlight=False, markup=False, soft_wrap=True)
    stdout.print(verdict.numerics_line, highlight=False, markup=False, soft_wrap=True)
    if verdict.speed == NOT_REPRODUCED and not moved:
        causes = ", ".join(f.name for f in differing if f.speed) or (
            "none recorded (the machine's state?)"
        )
        raise Regression(f"{file}: {speed}; facts that differ: {causes}")
