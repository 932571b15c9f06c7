"""fio jobs (kubestr's four, without ``gtod_reduce`` so latency is measured, plus an etcd-style
fdatasync job) and one parser for fio's JSON — used on a node over SSH and in a pod alike."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

#: (job name, fio options); one shared file, jobs run one after another (stonewall)
JOBS: list[tuple[str, str]] = [
    ("randread_4k", "--rw=randread --bs=4k --iodepth=16"),
    ("randwrite_4k", "--rw=randwrite --bs=4k --iodepth=16"),
    ("read_128k", "--rw=randread --bs=128k --iodepth=16"),
    ("write_128k", "--rw=randwrite --bs=128k --iodepth=16"),
    # etcd's pattern (KubeKey / etcd docs): small sequential writes, fdatasync after each
    ("fdatasync_2300", "--rw=write --bs=2300 --ioengine=sync --direct=0 --fdatasync=1 --size=22m"),
]
FDATASYNC_P99_MS = 10.0  # etcd's guideline for WAL fdatasync p99
DIR_PREFIX = ".runbooks-fio."


def argv(directory: str, runtime_s: int, size: str) -> str:
    """The fio command line (JSON output) for ``directory``."""
    common = (f"--output-format=json --directory={directory} --filename=runbooks-fio.dat --ioengine=libaio "
              f"--direct=1 --size={size} --runtime={runtime_s} --time_based --ramp_time=1")
    jobs = " ".join(f"--name={name} {opts} --stonewall" for name, opts in JOBS)
    return f"fio {common} {jobs}"


def node_command(base: str, runtime_s: int, size: str) -> str:
    """Run the jobs in a fresh directory under the base path (or its nearest existing parent: the
    filesystem a new hostpath PV lands on), removed on exit; ``absent`` when fio is missing."""
    budget = (runtime_s + 1) * len(JOBS) + 120
    return ("command -v fio >/dev/null || { echo absent; exit 0; }; "
            f'p="{base}"; while [ ! -e "$p" ]; do p="$(dirname "$p")"; done; '
            f'd="$(mktemp -d "$p/{DIR_PREFIX}XXXXXX")" || exit 3; trap \'rm -rf "$d"\' EXIT; '
            f'timeout {budget} {argv(chr(36) + "d", runtime_s, size)}')


@dataclass
class JobResult:
    job: str
    iops: float
    bw_kib_s: float
    p50_ms: float | None
    p99_ms: float | None
    sync_p99_ms: float | None = None  # fdatasync latency p99 (the sync job only)


def _pct(block: dict[str, Any], pct: str) -> float | None:
    value = (block.get("percentile") or {}).get(pct)
    return None if value is None else round(float(value) / 1e6, 3)


def parse(text: str) -> tuple[str, list[JobResult]]:
    """(fio version, one result per job) from fio's ``--output-format=json``; ValueError when the
    output is not fio JSON or a job reports an error. Completion latency (clat) percentiles."""
    start = text.find("{")
    if start < 0:
        raise ValueError(f"no fio JSON output ({text.strip()[:200] or 'empty'})")
    doc = json.loads(text[start:])
    out = []
    for job in doc.get("jobs") or []:
        if job.get("error"):
            raise ValueError(f"fio job {job.get('jobname')} failed with error {job['error']}")
        side = "read" if (job.get("read") or {}).get("io_bytes") else "write"
        d = job.get(side) or {}
        clat = d.get("clat_ns") or {}
        sync = (job.get("sync") or {}).get("lat_ns") or {}
        out.append(JobResult(str(job.get("jobname")), round(float(d.get("iops", 0.0)), 1),
                             float(d.get("bw", 0.0)), _pct(clat, "50.000000"), _pct(clat, "99.000000"),
                             _pct(sync, "99.000000") if sync.get("percentile") else None))
    if not out:
        raise ValueError("fio JSON without jobs")
    return str(doc.get("fio version", "")), out


def summary(results: list[JobResult]) -> dict[str, Any]:
    """The figures of one node/class: per job as a dict, for the JSON report."""
    return {r.job: {k: v for k, v in asdict(r).items() if k != "job" and v is not None} for r in results}
