"""The cluster of a multi-worker run, read from the standard TF_CONFIG (cluster + task): every
task's address, and ours."""

from __future__ import annotations

import json
from dataclasses import dataclass

from segbench.errors import BadInput


@dataclass(frozen=True)
class Cluster:
    """The cluster of a multi-worker run, from TF_CONFIG: every task's address, and ours."""

    addresses: tuple[str, ...]  # chief (if named) first, then the workers, in TF_CONFIG order
    index: int  # ours, in `addresses`

    @property
    def address(self) -> str:
        return self.addresses[self.index]

    @property
    def is_chief(self) -> bool:
        """Task 0 (the "chief" task, or worker 0 when there is none) writes the result."""
        return self.index == 0

    @property
    def peers(self) -> list[str]:
        return [a for i, a in enumerate(self.addresses) if i != self.index]


def parse_tf_config(text: str | None) -> Cluster:
    """The cluster in TF_CONFIG's text; BadInput saying what is wrong with it."""
    if not text:
        raise BadInput(
            "--strategy multiworker: TF_CONFIG is not set; set it on every worker (README: "
            '"More than one GPU or machine"), or on one host: segbench launch --workers N -- run …'
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"TF_CONFIG: not JSON ({e.msg} at character {e.pos})") from None
    cluster, task = (
        (config.get("cluster"), config.get("task")) if isinstance(config, dict) else (None, None)
    )
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise BadInput('TF_CONFIG: needs {"cluster": {"worker": [...]}, "task": {...}}')
    jobs = [job for job in ("chief", "worker") if job in cluster]
    other = sorted(set(cluster) - {"chief", "worker"})
    if other:
        raise BadInput(
            f"TF_CONFIG: job {other[0]!r} is not used by MultiWorkerMirroredStrategy; "
            "use chief and worker"
        )
    addresses: list[str] = []
    for job in jobs:
        hosts = cluster[job]
        if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) for h in hosts):
            raise BadInput(f'TF_CONFIG: cluster["{job}"] must be a list of "host:port" strings')
        if job == "chief" and len(hosts) != 1:
            raise BadInput('TF_CONFIG: cluster["chief"] must name exactly one task')
        for host in hosts:
            host_port(host)
        addresses.extend(hosts)
    if not addresses:
        raise BadInput('TF_CONFIG: cluster["worker"] is missing')
    if len(set(addresses)) != len(addresses):
        raise BadInput("TF_CONFIG: two tasks share an address; give each task its own port")
    kind, index = task.get("type"), task.get("index")
    if kind not in jobs:
        raise BadInput(
            f"TF_CONFIG: task type {kind!r} is not a job of the cluster ({', '.join(jobs)})"
        )
    if isinstance(index, bool) or not isinstance(index, int):
        raise BadInput(
            f'TF_CONFIG: task["index"] must be a whole number (0 to {len(cluster[kind]) - 1}), '
            f"found {json.dumps(index)}; "
            + (
                "write it without quotes"
                if isinstance(index, str) and index.strip().isdigit()
                else 'e.g. "index": 0'
            )
        )
    if not 0 <= index < len(cluster[kind]):
        raise BadInput(
            f"TF_CONFIG: task index {index!r} is out of range: {kind} has "
            f"{len(cluster[kind])} task(s), numbered from 0"
        )
    offset = 1 if kind == "worker" and "chief" in cluster else 0
    return Cluster(tuple(addresses), offset + index)


def host_port(address: str) -> tuple[str, int]:
    """(host, port) of a TF_CONFIG address; BadInput naming it unless the host is printable
    ASCII and the port 1–65535 in ASCII digits (str.isdigit also takes "²" and "١٢٣")."""
    host, _, port = address.rpartition(":")
    name = host.strip("[]")
    if not (_usable_host(name) and port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise BadInput(
            f"TF_CONFIG: {address!r} is not host:port (an ASCII host name or address, and a "
            "port of 1 to 65535 in ASCII digits)"
        )
    return name, int(port)


def _usable_host(name: str) -> bool:
    """A host name the socket functions take: printable ASCII, no spaces, labels of 1–63
    characters (else getaddrinfo raises UnicodeError, not OSError)."""
    if not (name and name.isascii() and name.isprintable()) or " " in name:
        return False
    try:
        name.encode("idna")
    except UnicodeError:
        return False
    return True
