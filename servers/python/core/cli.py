"""The command line of docs/server-contract.md, with bench-core's error messages (cli.rs), plus
`--work DIST` and `--seed N`."""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.exits import UsageError, fail_usage
from core.work import DEFAULT_SEED, Burner, Work

FLAGS = "--protocol, --host, --port, --threads, --cpus, --work, --seed"


@dataclass(frozen=True)
class Config:
    protocol: str = "echo"
    host: str = "127.0.0.1"
    port: int = 7878
    threads: int = 1
    cpus: tuple[int, ...] | None = None  # worker i -> cpus[i]; None: unpinned
    work: Work = field(default_factory=Work)
    seed: int = DEFAULT_SEED

    def cpu(self, worker: int) -> int | None:
        return None if self.cpus is None else self.cpus[worker]

    def burner(self, worker: int) -> Burner | None:
        return None if self.work.kind == "none" else Burner(self.work, self.seed, worker)


MAX_CPUS = 1024  # CPU_SETSIZE, as bench-core


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """`1,3,5` or ranges `0-3` (a CPU may repeat), as bench-core's cpu::parse_list."""
    if not text.strip():
        raise UsageError("--cpus: empty CPU list")

    def cpu(s: str) -> int:
        s = s.strip()
        if not re.fullmatch(r"\+?\d+", s):
            raise UsageError(f"--cpus: '{s}' is not a CPU number")
        if int(s) >= MAX_CPUS:
            raise UsageError(f"--cpus: CPU {int(s)} is out of range (at most {MAX_CPUS - 1})")
        return int(s)

    cpus: list[int] = []
    for item in text.split(","):
        first, dash, last = item.partition("-")
        lo, hi = (cpu(first), cpu(last)) if dash else (cpu(item), cpu(item))
        if lo > hi:
            raise UsageError(f"--cpus: descending range '{item}'")
        cpus.extend(range(lo, hi + 1))
    return tuple(cpus)


def _natural(flag: str, value: str, expected: str, lo: int, hi: int) -> int:
    if not re.fullmatch(r"\+?\d+", value) or not lo <= int(value) <= hi:
        raise UsageError(f"{flag}: expected {expected}, got '{value}'")
    return int(value)


def parse_config(args: Sequence[str], protocols: Sequence[str] = ("echo", "http")) -> Config:
    """The contract's flags (pure; raises UsageError). `protocols`: what this design speaks."""
    fields: dict = {}
    it = iter(args)
    for flag in it:
        value = next(it, None)
        if flag not in (
            "--protocol", "--host", "--port", "--threads", "--cpus", "--work", "--seed",
        ):  # fmt: skip
            raise UsageError(f"unknown argument '{flag}' (flags: {FLAGS})")
        if value is None:
            raise UsageError(f"{flag} needs a value")
        if flag == "--protocol":
            if value not in ("echo", "http"):
                raise UsageError(f"--protocol: unknown protocol '{value}' (expected echo or http)")
            if value not in protocols:
                raise UsageError(f"--protocol: this design speaks only {', '.join(protocols)}")
            fields["protocol"] = value
        elif flag == "--host":
            try:
                fields["host"] = str(ipaddress.ip_address(value))
            except ValueError:
                raise UsageError(f"--host: expected an IP address, got '{value}'") from None
        elif flag == "--port":
            fields["port"] = _natural(flag, value, "a port 1..65535", 1, 65535)
        elif flag == "--threads":
            fields["threads"] = _natural(flag, value, "a positive integer", 1, 1 << 16)
        elif flag == "--cpus":
            fields["cpus"] = parse_cpu_list(value)
        elif flag == "--work":
            fields["work"] = Work.parse(value)
        else:
            fields["seed"] = _natural(flag, value, "an integer 0..2^64-1", 0, (1 << 64) - 1)
    cfg = Config(**fields)
    if "protocol" not in fields and cfg.protocol not in protocols:
        raise UsageError(f"--protocol: this design speaks only {', '.join(protocols)}")
    if cfg.cpus is not None:
        if len(cfg.cpus) < cfg.threads:
            raise UsageError(f"--cpus names {len(cfg.cpus)} CPUs but --threads is {cfg.threads}")
        allowed = os.sched_getaffinity(0)
        bad = next((c for c in cfg.cpus if c not in allowed), None)
        if bad is not None:
            raise UsageError(f"--cpus: CPU {bad} is not available (allowed: {sorted(allowed)})")
    return cfg


def config_from_argv(protocols: Sequence[str] = ("echo", "http")) -> Config:
    try:
        return parse_config(sys.argv[1:], protocols)
    except UsageError as exc:
        fail_usage(str(exc))
