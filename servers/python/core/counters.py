"""One worker's counters (bench-core's counters.rs), sent to the parent for the report."""

from __future__ import annotations


class Counters:
    """One worker's counters, written only by that worker's process (no sharing at all).
    A counter a design cannot measure is None, and is reported as null (absent), never 0."""

    __slots__ = ("bytes_in", "bytes_out", "connections", "messages")

    def __init__(self, *, bytes_measured: bool = True) -> None:
        self.connections = 0
        self.messages = 0
        self.bytes_in: int | None = 0 if bytes_measured else None
        self.bytes_out: int | None = 0 if bytes_measured else None

    def as_json(self, worker: int, cpu: int | None) -> dict:
        return {
            "worker": worker,
            "cpu": cpu,
            "connections": self.connections,
            "messages": self.messages,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
        }
