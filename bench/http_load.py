"""HTTP load: one load run's figures (wrk or the paced client), its table row and its checks."""

from __future__ import annotations

from dataclasses import dataclass, field

CLIENT_CPUS = "1"  # taskset list for wrk and the paced client; --client-cpus overrides it
CONNECTIONS = 64


@dataclass
class LoadResult:
    label: str
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    socket_errors: int
    ok: int  # AddOrder: answered with "error":[] and a txid
    bad: int  # AddOrder: anything else
    exhausted: int
    client_cpu_pct: float
    server_cpu_pct: float
    server_cpu_s: float
    err_sample: str = ""
    txids: list[str] = field(default_factory=list)
    extra: str = ""

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def server_cpu_us(self) -> float:
        """Server CPU per answered request: robust to other load on the machine, unlike req/s."""
        return self.server_cpu_s / self.requests * 1e6

    def row(self) -> str:
        cells = [
            self.label, f"{self.per_s:,.0f}", f"{self.p50_ms:.2f}", f"{self.p99_ms:.2f}",
            f"{self.p999_ms:.2f}", f"{self.max_ms:.1f}", str(self.socket_errors),
            f"{self.client_cpu_pct:.0f} %", f"{self.server_cpu_pct:.0f} %", f"{self.server_cpu_us:.0f}",
        ]  # fmt: skip
        return "| " + " | ".join([*cells, self.extra.strip(" ;")]) + " |"


def check_load(result: LoadResult) -> None:
    assert result.socket_errors == 0, f"{result.label}: {result.socket_errors} socket errors or timeouts"
    assert result.bad == 0, f"{result.label}: {result.bad} failed answers, e.g. {result.err_sample}"
    assert result.exhausted == 0, f"{result.label}: ran out of pre-signed requests; raise PRESIGN_HEADROOM"
