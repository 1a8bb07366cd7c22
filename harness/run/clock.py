"""Each host's clock offset from this machine's, measured over the SSH channel (NTP-style).

One round: note local time t0, ask the host for its time r, note t3 when the answer arrives. If
the clocks agreed, r lies in [t0, t3], so offset = r - (t0 + t3) / 2 is off by at most
rtt / 2 = (t3 - t0) / 2 plus the host clock's reading resolution, whatever the asymmetry of the
path. Of several rounds the one with the smallest round trip has the smallest bound and is kept.
Times are CLOCK_REALTIME in nanoseconds since the epoch on both sides.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.run.remote import Connection, RemoteError

if TYPE_CHECKING:
    import asyncssh

DEFAULT_ROUNDS = 16
ROUND_TIMEOUT_S = 5.0

# The host answers each line on stdin with its time: bash's $EPOCHREALTIME (no fork, whole
# microseconds) where bash exists, else `date +%s%N` (nanoseconds; the fork lands inside the
# round trip, so inside the bound). The loop ends at end of file on stdin, so it cannot outlive
# the channel.
_CLOCK_SCRIPT = (
    "LC_ALL=C; export LC_ALL; "
    "if command -v bash >/dev/null 2>&1; then exec bash -c '"
    'if [ -n "$EPOCHREALTIME" ]; then while read -r _; do echo "us $EPOCHREALTIME"; done; '
    'else while read -r _; do echo "ns $(date +%s%N)"; done; fi\'; fi; '
    'while read -r _; do echo "ns $(date +%s%N)"; done'
)


@dataclass(frozen=True)
class ClockOffset:
    """host clock = local clock + offset_ns, to within +- uncertainty_ns."""

    host: str
    offset_ns: int
    uncertainty_ns: int
    rtt_ns: int  # the kept round's round trip
    rounds: int

    def to_host(self, local_ns: int) -> int:
        """A local instant in the host's clock."""
        return local_ns + self.offset_ns

    def as_dict(self) -> dict[str, int | str]:
        return {
            "host": self.host,
            "offset_ns": self.offset_ns,
            "uncertainty_ns": self.uncertainty_ns,
            "rtt_ns": self.rtt_ns,
            "rounds": self.rounds,
        }


@dataclass(frozen=True)
class ClockRound:
    t0_ns: int  # local, before asking
    remote_ns: int  # the host's answer
    t3_ns: int  # local, after the answer arrived
    resolution_ns: int  # of the host's reading

    @property
    def rtt_ns(self) -> int:
        return self.t3_ns - self.t0_ns


def parse_answer(line: str) -> tuple[int, int]:
    """(time in ns, resolution in ns) from one answer line (`us SECONDS.MICROS` or `ns NANOS`)."""
    kind, _, value = line.strip().partition(" ")
    if kind == "us":
        seconds, _, frac = value.replace(",", ".").partition(".")
        if not (seconds.isdigit() and frac.isdigit() and len(frac) <= 9):
            raise ValueError(f"bad clock answer {line!r}")
        return int(seconds) * 1_000_000_000 + int(frac.ljust(9, "0")), 10 ** (9 - len(frac))
    if kind == "ns" and value.isdigit() and len(value) > 9:
        return int(value), 1
    raise ValueError(f"bad clock answer {line!r} (the host's `date` has no %N?)")


def offset_from_rounds(host: str, rounds: Sequence[ClockRound]) -> ClockOffset:
    """The offset of the round with the smallest round trip (pure)."""
    if not rounds:
        raise ValueError("no clock rounds")
    best = min(rounds, key=lambda r: r.rtt_ns)
    midpoint2 = best.t0_ns + best.t3_ns  # twice the local midpoint: exact integer arithmetic
    offset = (2 * best.remote_ns - midpoint2) // 2
    # rtt/2 rounded up, plus the reading resolution and the 1 ns lost halving above.
    uncertainty = (best.rtt_ns + 1) // 2 + best.resolution_ns + 1
    return ClockOffset(host, offset, uncertainty, best.rtt_ns, len(rounds))


def measure_offset(conn: Connection, rounds: int = DEFAULT_ROUNDS) -> ClockOffset:
    """Exchange `rounds` time requests with the host over one SSH channel."""
    if rounds < 1:
        raise ValueError("at least one round")

    async def exchange(ssh: asyncssh.SSHClientConnection) -> list[ClockRound]:
        proc = await ssh.create_process(_CLOCK_SCRIPT)
        out: list[ClockRound] = []
        try:
            for _ in range(rounds):
                t0 = time.time_ns()
                proc.stdin.write("t\n")
                line = await asyncio.wait_for(proc.stdout.readline(), ROUND_TIMEOUT_S)
                t3 = time.time_ns()
                if not line:
                    err = (await proc.stderr.read()).strip()
                    raise RemoteError(f"{conn.host}: clock exchange ended: {err or 'no answer'}")
                try:
                    remote_ns, resolution = parse_answer(line)
                except ValueError as exc:
                    raise RemoteError(f"{conn.host}: {exc}") from None
                out.append(ClockRound(t0, remote_ns, t3, resolution))
        finally:
            proc.stdin.write_eof()
            proc.close()
        return out

    samples = conn.call(exchange, timeout_s=rounds * ROUND_TIMEOUT_S + 10)
    return offset_from_rounds(str(conn.host), samples)


def start_times(local_start_ns: int, offsets: Mapping[str, ClockOffset]) -> dict[str, int]:
    """One common start instant (in this machine's clock) in each host's own clock."""
    return {host: off.to_host(local_start_ns) for host, off in offsets.items()}


def common_start(offsets: Mapping[str, ClockOffset], lead_s: float) -> tuple[int, dict[str, int]]:
    """A start lead_s from now, as (local ns, {host: that instant in the host's clock})."""
    local = time.time_ns() + int(lead_s * 1e9)
    return local, start_times(local, offsets)
