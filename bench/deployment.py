"""Deployment: the scaled-out deployment a benchmark runs against, and its processes by kind.

A fresh Tansu broker and PostgreSQL database per deployment, the roles started by
``tests/cluster/harness.py`` (two engine replicas, ledger writer, relay, notifier, gateways).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from cpu_meter import Groups
from tests.cluster.harness import Cluster, RoleProc
from tests.kafka.broker import Tansu
from tests.postgres.cluster import PgCluster

ENGINES = 2  # a leader and a standby
LEASE_TTL_S = 2.0


def children_of(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
    return out


def pg_pids(pg: PgCluster) -> list[int]:
    try:
        master = int((pg.data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    return [master, *children_of(master)]


def cluster_groups(cluster: Cluster, tansu: Tansu, pg: PgCluster) -> Groups:
    def groups() -> dict[str, list[int]]:
        engines = [e for e in cluster.engines if e.proc is not None]
        leader = [e.proc.pid for e in engines if _is_leader(e)]  # type: ignore[union-attr]
        others = {n: r.proc.pid for n, r in cluster.others.items() if r.proc is not None}
        return {
            "gateways": [g.proc.pid for g in cluster.gateways if g.proc is not None],
            "engine (leader)": leader,
            "engine (standby)": [e.proc.pid for e in engines if e.proc.pid not in leader],  # type: ignore[union-attr]
            "ledger-writer": [pid for n, pid in others.items() if n == "ledger-writer"],
            "relay+notifier": [pid for n, pid in others.items() if n != "ledger-writer"],
            "tansu": [tansu.proc.pid] if tansu.proc else [],
            "postgres": pg_pids(pg),
        }

    return groups


def _is_leader(e: RoleProc) -> bool:
    try:
        return bool(e.status()["leader"])
    except OSError:
        return False


def start_cluster(pg: PgCluster, work: Path, name: str, lease_ttl: float = LEASE_TTL_S,
                  gateways: int = 2) -> tuple[Cluster, Tansu]:  # fmt: skip
    tansu = Tansu()
    tansu.start()
    url = pg.create_database(name)
    cluster = Cluster(work / name / "data", url, tansu.url)
    cluster.start(gateways=gateways, engines=ENGINES, lease_ttl=lease_ttl)
    return cluster, tansu


def stop_cluster(cluster: Cluster, tansu: Tansu) -> None:
    with contextlib.suppress(Exception):
        cluster.stop()
    tansu.stop()
    if tansu.log_path is not None:
        tansu.log_path.unlink(missing_ok=True)


def account_ids(cluster: Cluster, api_keys: tuple[str, str]) -> tuple[int, int]:
    """The account numbers behind two API keys, from the deployment's database."""
    import psycopg

    with psycopg.connect(cluster.database) as conn:
        got = []
        for api_key in api_keys:
            row = conn.execute("SELECT account FROM api_keys WHERE api_key = %s", (api_key,)).fetchone()
            assert row is not None, api_key
            got.append(int(row[0]))
    return got[0], got[1]
