"""Scaled-out mode: the command log and event log on Kafka, the record on PostgreSQL.

See docs/scaled-out.md for the roles, the leader lease, and how each failure is handled.
"""
