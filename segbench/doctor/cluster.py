"""The check of a data-parallel run's set-up: replicas on this machine, or TF_CONFIG's cluster."""

from __future__ import annotations

from segbench.doctor.types import FAIL, PASS, WARN, Check
from segbench.measure.parallel.distribution import MIRRORED
from segbench.measure.parallel.peers import PEER_TIMEOUT_S, Survey


def check_distribution(survey: Survey, gpus: list[str], requested_gpus: int | None) -> Check:
    """TF_CONFIG parses, this task's address is local and its port free, the other workers
    listen; mirrored: enough GPUs for --gpus."""
    if survey.problem:
        return Check("distribution", FAIL, f"{survey.found}: {survey.problem}", fix=survey.fix)
    if survey.strategy == MIRRORED:
        if requested_gpus and requested_gpus > len(gpus):
            return Check(
                "distribution",
                FAIL,
                f"--gpus {requested_gpus}, {len(gpus)} GPU(s) visible",
                expected=f"{requested_gpus} GPUs",
                fix=(
                    f"lower --gpus to {len(gpus)}, or --cpu-replicas N to test the mechanism"
                    if gpus
                    else "no GPU is visible: drop --gpus and use --cpu-replicas N to test the "
                    "mechanism, or run where the GPUs are visible"
                ),
            )
        replicas = requested_gpus or len(gpus)
        found = (
            f"mirrored over {replicas} GPU(s)"
            if replicas
            else "mirrored on the CPU (no GPU): one replica, or --cpu-replicas N"
        )
        return Check("distribution", PASS, found)
    if survey.unreachable:
        return Check(
            "distribution",
            WARN,
            f"{survey.found}; not listening yet: {', '.join(survey.unreachable)}",
            expected="every worker reachable",
            fix=f"start segbench run --strategy multiworker on those hosts (a run waits "
            f"{PEER_TIMEOUT_S:.0f} s for them) and open their ports",
        )
    return Check("distribution", PASS, f"{survey.found}; every other worker reachable")
