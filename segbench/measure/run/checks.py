"""The checks before timing: the backend's import tried in a child process first, the doctor's
environment checks, and the numerics check against the CPU reference."""

from __future__ import annotations

from pathlib import Path

from segbench import doctor
from segbench.benchmark import triangles
from segbench.benchmark.config import RunConfig
from segbench.doctor.types import Check, Facts
from segbench.errors import Unavailable
from segbench.measure import backend, numerics
from segbench.measure.parallel import distribution
from segbench.measure.parallel.peers import Survey
from segbench.measure.parallel.strategies import Replication
from segbench.measure.run.display import Display
from segbench.results.result import OwnModelInfo


class ChecksFailed(Unavailable):
    """An environment check FAILed and --force was not given."""


def import_safely(name: str, display: Display) -> None:
    """Import the backend here only once a child process has imported it without dying: a
    plugin built for another TensorFlow would otherwise end the run in a traceback or a crash.
    Refuses with doctor's own line (its import check) whatever --force says."""
    from segbench.doctor.gather import installed_distributions
    from segbench.doctor.probe import modules_for, probe

    if not all(_installed(m) for m in modules_for(name)):
        return  # a missing framework: the framework checks say so
    with display.status(f"importing {', '.join(modules_for(name))} (in a child process first)"):
        probed = probe(name)
    if not probed.ok:
        from segbench.measure import settings

        check = doctor.check_import(probed, installed_distributions()[0], None, settings.survey())
        raise ChecksFailed(f"{check.found}; fix: {check.fix}")
    with display.status(f"importing {', '.join(modules_for(name))}"):
        backend.import_quietly()


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def check_environment(
    config: RunConfig,
    data_dir: Path | None,
    out: Path,
    force: bool,
    display: Display,
    replication: Replication | None,
    survey: Survey | None,
) -> tuple[Facts, list[Check], list[Check]]:
    """The doctor's facts and checks for this run, and those that failed; ChecksFailed (after
    showing them) when one failed and not `force`."""
    context = doctor.Context(
        preset=config.preset,
        width=config.width,
        batch_size=config.batch_size // (replication.replicas if replication else 1),
        epochs=config.epochs,
        device=config.device,  # as asked: "auto" still expects the GPU a driver announces
        precision=config.precision,
        xla=config.xla,
        folders=(str(data_dir or triangles.default_data_dir()), str(out)),
        strategy=config.strategy or distribution.NONE,
        gpus=config.gpus,
        replicas=len(replication.devices) if replication else 1,
        model=config.model,
    )
    with display.status("checking the environment"):
        facts = doctor.gather(context, survey)
    checks = doctor.run_checks(facts, context)
    failures = doctor.failed(checks)
    if failures and not force:
        display.failed_checks(failures)
        names = ", ".join(c.id for c in failures)
        raise ChecksFailed(
            f"{len(failures)} environment check(s) failed ({names}); "
            "fix them (segbench doctor shows all checks) or pass --force"
        )
    return facts, checks, failures


def check_numerics(
    config: RunConfig,
    device: backend.Device,
    display: Display,
    own: OwnModelInfo | None = None,
    enabled: bool = True,
) -> numerics.Numerics:
    """The numerics check on the run's device, backend and precision, before timing (skipped
    when not `enabled`: --no-check-numerics); a user's model is held against its own CPU
    float32 reference (computed once, then cached)."""
    from segbench.measure import trainer

    if not enabled:
        return numerics.Numerics(status=numerics.SKIPPED, reason="--no-check-numerics")
    reference = None
    if own is not None:
        try:
            with display.status(f"computing the CPU float32 reference of --model {own.spec}"):
                reference, _ = numerics.own_reference(config, own.digest)
        except Unavailable as e:
            return numerics.Numerics(status=numerics.SKIPPED, reason=str(e))
    try:
        with display.status("checking the device's numerics against the CPU reference"):
            losses, draws = trainer.active().numerics_losses(config, device)
    except Exception as e:  # noqa: BLE001 - the run itself reports what is broken
        reason = f"the check could not run ({type(e).__name__}: {str(e)[:200]})"
        return numerics.Numerics(status=numerics.SKIPPED, reason=reason)
    reference = reference or numerics.shipped_reference()
    found = numerics.judge(losses, config.precision, reference, config.backend)
    return numerics.with_random(found, *numerics.judge_dropout(draws))
