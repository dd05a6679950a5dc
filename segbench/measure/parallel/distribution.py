"""Data-parallel runs: the strategy names, the per-replica and global batch, and the record a
result keeps of how a run was spread over replicas.

A replica is one copy of the model on one device; every step, each replica trains on its own
slice of the global batch and the gradients are averaged across replicas before the update
(tf.distribute on the tensorflow backend, keras.distribution.DataParallel on jax: strategies.py).
`--batch-size` is per replica (weak scaling: the global batch grows with the replicas);
`--global-batch` fixes the global batch instead (strong scaling). Multi-worker runs read the
standard TF_CONFIG (cluster + task: tf_config.py, peers.py), so they run unchanged under
Kubernetes, Slurm or ssh.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

from segbench.errors import BadInput
from segbench.results.schema import OPTIONAL, OPTIONAL_POSITIVE, POSITIVE

NONE, MIRRORED, MULTIWORKER = "none", "mirrored", "multiworker"
STRATEGIES = (NONE, MIRRORED, MULTIWORKER)
MECHANISM_ONLY = (
    "logical CPU devices share the same cores: this measures the distribution mechanism, not speed"
)


@dataclass(frozen=True, kw_only=True)
class Distribution:
    """How a run was spread over replicas, recorded in the result (absent: one device)."""

    strategy: str = field(metadata={"enum": STRATEGIES[1:]})
    replicas: int = field(metadata=POSITIVE)  # in all workers together
    workers: int = field(metadata=POSITIVE)  # processes (1 for mirrored)
    per_replica_batch: int = field(metadata=POSITIVE)
    global_batch: int = field(metadata=POSITIVE)  # images per step, all replicas together
    scaling: str = field(metadata={"enum": ("weak", "strong")})  # --batch-size or --global-batch
    communication: str  # how gradients are all-reduced
    batchnorm: str = field(metadata={"enum": ("per-replica", "synchronized")})
    devices: list[str]  # this worker's replica devices
    # Whole job and per replica, from the median step (absent when no step was timed).
    images_per_s: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    images_per_s_per_replica: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    # --scaling: one replica measured first, and N-replica images/s ÷ (N × that).
    one_replica_images_per_s: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    scaling_efficiency: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    note: str | None = field(default=None, metadata=OPTIONAL)  # e.g. logical CPU devices


def with_throughput(
    distribution: Distribution, images_per_s: float | None, one_replica: float | None
) -> Distribution:
    """`distribution` with the job's images/s, per replica, and the scaling efficiency."""
    from dataclasses import replace

    if images_per_s is None:
        return replace(distribution, one_replica_images_per_s=one_replica)
    return replace(
        distribution,
        images_per_s=images_per_s,
        images_per_s_per_replica=images_per_s / distribution.replicas,
        one_replica_images_per_s=one_replica,
        scaling_efficiency=scaling_efficiency(images_per_s, distribution.replicas, one_replica),
    )


def scaling_efficiency(
    images_per_s: float, replicas: int, one_replica: float | None
) -> float | None:
    """N-replica images/s ÷ (N × one-replica images/s); 1.0 is perfect scaling."""
    if not one_replica:
        return None
    return images_per_s / (replicas * one_replica)


def batches(batch_size: int, global_batch: int | None, replicas: int) -> tuple[int, int]:
    """(per-replica batch, global batch): `--batch-size` per replica, or `--global-batch`
    split evenly; BadInput when it does not split."""
    if global_batch is None:
        return batch_size, batch_size * replicas
    if global_batch % replicas:
        raise BadInput(
            f"--global-batch {global_batch}: does not split evenly over {replicas} replicas; "
            f"use a multiple of {replicas}"
        )
    return global_batch // replicas, global_batch


def configure_before_import(config: Any) -> None:
    """What must be set before the backend starts: JAX's count of CPU devices."""
    if config.backend == "jax" and config.cpu_replicas:
        flag = f"--xla_force_host_platform_device_count={config.cpu_replicas}"
        if "jax" in sys.modules:  # too late to split the CPU in this process
            return
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()
