"""Sequencer metrics: the batch, commit and apply series a running server exposes on /metrics."""

from __future__ import annotations

import urllib.request

from abyssal_server import Server

SEQUENCER_SERIES = (
    "abyssal_sequencer_batch_commands_sum",
    "abyssal_sequencer_batch_commands_count",
    "abyssal_sequencer_commit_duration_seconds_sum",
    "abyssal_engine_apply_duration_seconds_sum",
)


def scrape(server: Server) -> dict[str, float]:
    """The sequencer's batch and commit series from /metrics (empty when the server has none)."""
    try:
        with urllib.request.urlopen(server.url + "/metrics", timeout=10) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        if name in SEQUENCER_SERIES:
            out[name] = out.get(name, 0.0) + float(value)
    return out


def sequencer_note(before: dict[str, float], after: dict[str, float]) -> str:
    """Mean batch, commit and apply per batch during one run, from two scrapes."""
    d = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in SEQUENCER_SERIES}
    batches = d["abyssal_sequencer_batch_commands_count"]
    if not batches:
        return ""
    return (
        f" mean batch {d['abyssal_sequencer_batch_commands_sum'] / batches:.1f} commands, "
        f"commit {d['abyssal_sequencer_commit_duration_seconds_sum'] / batches * 1000:.2f} ms, "
        f"apply {d['abyssal_engine_apply_duration_seconds_sum'] / batches * 1000:.2f} ms per batch"
    )
