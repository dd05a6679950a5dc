"""The fake trainer's multi-worker job: the workers of TF_CONFIG meet through the real rendezvous
(peers.py) and all-reduce each step's stop ballots (stop_vote.py) through files in a folder they
share, where TensorFlow's ring all-reduce would carry them with the step's logs. Launch's
process handling, the stop vote and the chief's saving then run as they do for a real job, in
seconds and without a framework (docs/development.md)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from segbench.errors import BadInput
from segbench.measure.parallel.distribution import MULTIWORKER
from segbench.measure.parallel.peers import rendezvous
from segbench.measure.parallel.stop_vote import StopVote, ballot
from segbench.measure.parallel.strategies import Replication
from segbench.measure.parallel.tf_config import parse_tf_config

POLL_S = 0.005


class PeerLost(RuntimeError):
    """A worker did not answer an all-reduce in time (TensorFlow's UnavailableError)."""


class FakeWorkers(Replication):
    """One worker of a multi-worker job on the fake trainer. `trainer`: the FakeTrainer whose
    steps and clock each worker runs."""

    def __init__(self, config: Any, trainer: Any, timeout: float) -> None:
        if config.strategy != MULTIWORKER:
            raise BadInput(
                f"--strategy {config.strategy}: the fake trainer runs --strategy multiworker only"
            )
        text = os.environ.get("TF_CONFIG")
        self.cluster = parse_tf_config(text)
        rendezvous(self.cluster, timeout)
        self.trainer = trainer
        self.timeout = max(timeout, 1.0)
        self.strategy = MULTIWORKER
        self.workers = self.replicas = len(self.cluster.addresses)
        self.is_chief = self.cluster.is_chief
        self.devices = ["CPU:0"] * self.workers
        self.communication = "all-reduce through files (fake trainer)"
        self.batchnorm = "synchronized" if config.sync_batchnorm else "per-replica"
        key = hashlib.sha256(",".join(self.cluster.addresses).encode()).hexdigest()[:16]
        self.folder = Path(tempfile.gettempdir()) / f"segbench-fake-allreduce-{key}"
        self.folder.mkdir(exist_ok=True)
        self.round = 0
        self.vote: StopVote | None = None
        self.shares: list[float] | None = None

    def stage(self, x: Any, y: Any) -> Any:
        per = len(x) // self.replicas
        return x[:per], y[:per]

    def synchronize(self) -> None:
        pass

    def clock_ns(self) -> int:
        return self.trainer.clock_ns()

    def compile(self, build: Callable[[], Any], example: tuple[Any, Any]) -> tuple[Any, Any, Any]:
        model, train, test = self.trainer.compile(self.trainer.config, 0.0)

        def voting(batch: Any) -> dict:
            logs = train(*batch)
            self.shares = self.all_reduce(ballot(self.vote.noted if self.vote else None))
            return logs

        return model, voting, lambda batch: test(*batch)

    def stopping(self) -> AbstractContextManager[object]:
        self.vote = StopVote()
        return _Leaving(self.vote, self)

    def after_step(self) -> None:
        if self.vote is not None and self.shares is not None:
            self.vote.decide(self.shares)

    def pause(self) -> None:
        if self.vote is not None:
            self.vote.decide(self.all_reduce(ballot(self.vote.noted)))

    def all_reduce(self, values: Any) -> list[float]:
        """The mean over every worker of `values` (this worker's), once all have given theirs;
        PeerLost naming the silent workers after the peer time-out."""
        self.round += 1
        mine = self.folder / f"{self.round}-{self.cluster.index}"
        staged = mine.with_suffix(".part")
        staged.write_text(json.dumps([float(v) for v in values]))
        staged.replace(mine)  # the others never read half a ballot
        names = [self.folder / f"{self.round}-{i}" for i in range(self.workers)]
        deadline = time.monotonic() + self.timeout
        while not all(p.exists() for p in names):
            if time.monotonic() > deadline:
                silent = [self.cluster.addresses[i] for i, p in enumerate(names) if not p.exists()]
                raise PeerLost(f"all-reduce: no answer from {', '.join(silent)}")
            time.sleep(POLL_S)
        found = [json.loads(p.read_text()) for p in names]
        # Every worker has read the round before this one: its ballot can go.
        (self.folder / f"{self.round - 1}-{self.cluster.index}").unlink(missing_ok=True)
        return [sum(column) / self.workers for column in zip(*found, strict=True)]

    def leave(self) -> None:
        """Say this worker has read its last ballot; the last to leave removes the folder."""
        (self.folder / f"left-{self.cluster.index}").touch()
        if all((self.folder / f"left-{i}").exists() for i in range(self.workers)):
            shutil.rmtree(self.folder, ignore_errors=True)


class _Leaving:
    """The stop vote, then this worker's ballots removed."""

    def __init__(self, vote: StopVote, workers: FakeWorkers) -> None:
        self.vote = vote
        self.workers = workers

    def __enter__(self) -> StopVote:
        return self.vote.__enter__()

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        try:
            self.vote.__exit__(kind, error, trace)
        finally:
            self.workers.leave()
