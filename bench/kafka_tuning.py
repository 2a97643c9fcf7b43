"""Kafka tuning: a sweep of kafka_log.py's tuning constants, a fresh deployment per setting.

Each role process is patched by a ``sitecustomize`` on ``PYTHONPATH`` (the source is not changed);
each row prints K=1 latency, K=64 throughput and the idle CPU of the deployment.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from cpu_meter import CpuMeter
from deployment import cluster_groups, start_cluster, stop_cluster
from load_rows import load_row
from tests.postgres.cluster import PgCluster
from traders import make_traders

SWEEP = (
    {"FETCH_WAIT_MAX_MS": 2},
    {"FETCH_WAIT_MAX_MS": 1},
    {"FETCH_WAIT_MAX_MS": 5},
    {"FETCH_WAIT_MAX_MS": 10},
    {"FETCH_WAIT_MAX_MS": 100},
    {"FETCH_WAIT_MAX_MS": 2, "linger_ms": 1},
)
SWEEP_SECONDS = 4.0
IDLE_CPU_S = 3.0
TUNING_ENV = "ABYSSAL_BENCH_KAFKA_TUNING"
SITECUSTOMIZE = f'''
import json, os
_spec = os.environ.get("{TUNING_ENV}")
if _spec:
    import abyssal.cluster.kafka_log as _k
    for _name, _value in json.loads(_spec).items():
        if _name == "linger_ms":
            _k.LogProducer.__init__.__kwdefaults__["linger_ms"] = _value
        else:
            assert hasattr(_k, _name), _name
            setattr(_k, _name, _value)
'''


def sweep(pg: PgCluster, work: Path, seconds: float) -> None:
    site = work / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", TUNING_ENV)}
    print("\n## Sweep: kafka_log.py tuning constants (each row a fresh deployment, 1 gateway)\n")
    print(
        "| setting | K=1 p50 ms | K=1 p99 ms | K=64 acked/s | K=64 p50 ms | K=64 p99 ms "
        "| idle CPU % of a core (tansu / all) |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for n, setting in enumerate(SWEEP):
        os.environ["PYTHONPATH"] = os.pathsep.join([str(site), *(p for p in [saved["PYTHONPATH"]] if p)])
        os.environ[TUNING_ENV] = json.dumps(setting)
        cluster, tansu = start_cluster(pg, work, f"sweep{n}_{os.getpid()}", gateways=1)
        try:
            groups = cluster_groups(cluster, tansu, pg)
            meter = CpuMeter(groups)
            traders = make_traders(cluster.gateways[0], 64, f"sw{n}")
            meter.start()
            time.sleep(IDLE_CPU_S)
            idle = meter.stop()
            idle.pop("client", None)
            ports = [cluster.gateways[0].port]
            k1 = load_row("k1", ports, traders[:1], seconds, meter, [])
            k64 = load_row("k64", ports, traders, seconds, meter, [])
            print(f"| {json.dumps(setting)} | {k1.p50:.2f} | {k1.p99:.2f} | {k64.per_s:,.0f} | {k64.p50:.2f} "
                  f"| {k64.p99:.2f} | {idle['tansu'] / IDLE_CPU_S * 100:.0f} / "
                  f"{sum(idle.values()) / IDLE_CPU_S * 100:.0f} |", flush=True)  # fmt: skip
        finally:
            stop_cluster(cluster, tansu)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
