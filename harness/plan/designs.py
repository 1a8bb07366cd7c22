"""The design registry (servers/registry.toml): what each server design is and how to start it."""

from __future__ import annotations

import functools
import importlib.metadata
import itertools
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REGISTRY = REPO_ROOT / "servers" / "registry.toml"
DEFAULT_BIN_DIR = REPO_ROOT / "target" / "release"
DEFAULT_LOCKFILE = REPO_ROOT / "Cargo.lock"

# The values each factor may take (servers/registry.toml's header says what they mean).
FACTOR_VALUES: dict[str, tuple[str, ...]] = {
    "scheduler": ("work-stealing", "per-core", "shared-pool"),
    "accept": ("shared-listener", "reuseport", "dispatch", "shared-listener-task"),
    # The data path (the registry's header and docs/designs.md say what each is).
    "io": ("epoll", "uring-poll", "uring-oneshot", "uring-multishot"),
    "runtime": (
        "tokio",
        "monoio",
        "glommio",
        "compio",
        "tokio-uring",
        "smol",
        "async-std",
        "rayon",
        "none",
        "uvloop",
        "asyncio",
        "aiohttp",
        "nginx",
    ),
    "concurrency": ("task-per-connection", "structured", "event-loop"),
}
# What a design that does not declare `concurrency` is: every design written before the factor
# existed that has a runtime spawns a task per connection (manifests written then lack the key).
DEFAULT_CONCURRENCY = "task-per-connection"
MAINTENANCE_VALUES = ("unmaintained upstream", "discontinued upstream")
REQUIREMENTS = ("io_uring", "memlock")
# Two designs differing in exactly one of these are a controlled pair. The order is the one a
# chain of pairs prefers (docs/designs.md): accept topology first, then stealing, then the
# runtime, then the I/O model, then how a worker runs its connections (tasks or one structured
# group); language last (no cross-language pair is controlled anyway).
PAIR_FACTORS = ("accept", "scheduler", "runtime", "io", "concurrency", "language")


@dataclass(frozen=True)
class Design:
    name: str
    family: str
    io_model: str
    language: str
    protocols: tuple[str, ...]
    command: str
    ready: str  # "line" | "port"
    pins_itself: bool
    counters: bool
    summary: str
    default: bool = False
    work: bool = False  # accepts --work DIST --seed N (server-side CPU burn per request)
    # What conformance tolerates from a server nobody here wrote (harness/checks/conformance/).
    conformance: dict[str, object] = field(default_factory=dict)
    # Factors (None: not declared; such a design is in no controlled pair).
    scheduler: str | None = None
    accept: str | None = None
    io: str | None = None
    runtime: str | None = None
    crate: str | None = None  # Rust: the crate in Cargo.lock whose version is the runtime's
    runtime_version: str | None = None  # from Cargo.lock or the installed package; None: unknown
    maintenance: str | None = None  # "unmaintained upstream" | "discontinued upstream"
    requires: tuple[str, ...] = ()  # what the machine must allow: "io_uring", "memlock"
    # task-per-connection | structured (one group of futures in the worker's task) | event-loop
    # (no futures: per-connection state in a hand-written loop or protocol callbacks).
    concurrency: str = DEFAULT_CONCURRENCY

    def factors(self) -> dict[str, str | None]:
        """The factors a controlled pair is judged on, by name."""
        return {f: getattr(self, f) for f in PAIR_FACTORS}

    def argv(
        self, *, bin_dir: Path, protocol: str, host: str, port: int, threads: int, cpus: str
    ) -> list[str]:
        fields = {
            "bin_dir": str(bin_dir),
            "protocol": protocol,
            "host": host,
            "port": port,
            "threads": threads,
            "cpus": cpus,
            "python": sys.executable,
            "repo": str(REPO_ROOT),
        }
        return [part.format(**fields) for part in shlex.split(self.command)]

    def missing(self, bin_dir: Path) -> str | None:
        """Why this design cannot run here, or None."""
        exe = self.argv(
            bin_dir=bin_dir, protocol="echo", host="127.0.0.1", port=0, threads=1, cpus="0"
        )[0]
        if "/" in exe:
            if not Path(exe).is_file():
                return f"{exe} is not built (run `make build`)"
        elif shutil.which(exe) is None:
            return f"{exe} is not installed"
        return None


_REQUIRED = ("name", "family", "io_model", "language", "protocols", "command")


def lock_versions(lockfile: Path = DEFAULT_LOCKFILE) -> dict[str, str] | None:
    """crate name -> the version the workspace uses, from Cargo.lock; None without a lockfile.

    A crate locked at two versions (io-uring 0.6 under tokio-uring, 0.7 for uring-tpc) gets the
    one a workspace member (a package without `source`) depends on directly.
    """
    try:
        lock = tomllib.loads(lockfile.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    packages = lock.get("package", [])
    versions: dict[str, list[str]] = {}
    for pkg in packages:
        versions.setdefault(pkg["name"], []).append(pkg["version"])
    direct: dict[str, str] = {}
    for pkg in packages:
        if "source" in pkg:
            continue
        for dep in pkg.get("dependencies", []):
            name, _, version = dep.partition(" ")
            if version:
                direct[name] = version.split(" ")[0]
    return {
        name: direct.get(name, vs[-1]) if len(vs) > 1 else vs[0] for name, vs in versions.items()
    }


@functools.cache
def _package_version(runtime: str) -> str | None:
    """Version of a non-Rust runtime as installed here (Python's packages, Debian's nginx)."""
    if runtime == "asyncio":
        return platform.python_version()
    if runtime == "nginx":
        exe = shutil.which("nginx") or shutil.which("/usr/sbin/nginx")
        if exe is None:
            return None
        try:  # `nginx -v` prints "nginx version: nginx/1.22.1" on stderr
            out = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            return None
        found = re.search(r"nginx/(\S+)", out.stderr + out.stdout)
        return found.group(1) if found else None
    try:
        return importlib.metadata.version(runtime)
    except importlib.metadata.PackageNotFoundError:
        return None


def _choice(path: Path, name: str, key: str, value: object, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        raise HarnessError(
            f"{path}: design {name}: {key} = {value!r} is not one of {', '.join(allowed)}"
        )
    return str(value)


def _factor_fields(
    path: Path, entry: Mapping[str, object], locked: dict[str, str] | None, lockfile: Path
) -> dict[str, object]:
    """The factor keys of one registry entry, validated, with the runtime's version."""
    name = str(entry["name"])
    out: dict[str, object] = {}
    for key, allowed in FACTOR_VALUES.items():
        if key in entry:
            out[key] = _choice(path, name, key, entry[key], allowed)
    if "maintenance" in entry:
        out["maintenance"] = _choice(
            path, name, "maintenance", entry["maintenance"], MAINTENANCE_VALUES
        )
    requires = entry.get("requires", [])
    if not isinstance(requires, list):
        raise HarnessError(
            f"{path}: design {name}: requires must be a list of {', '.join(REQUIREMENTS)}"
        )
    out["requires"] = tuple(_choice(path, name, "requires", r, REQUIREMENTS) for r in requires)
    crate = entry.get("crate")
    if crate is not None:
        if not isinstance(crate, str):
            raise HarnessError(f"{path}: design {name}: crate must be a crate name (a string)")
        out["crate"] = crate
        if locked is not None:
            if crate not in locked:
                raise HarnessError(
                    f"{path}: design {name}: crate {crate!r} is not in {lockfile}; "
                    "name the crate as Cargo.lock spells it"
                )
            out["runtime_version"] = locked[crate]
    elif entry.get("language") != "rust" and "runtime" in out:
        out["runtime_version"] = _package_version(str(out["runtime"]))
    return out


def load_registry(
    path: Path = DEFAULT_REGISTRY, lockfile: Path = DEFAULT_LOCKFILE
) -> dict[str, Design]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise HarnessError(f"cannot read the design registry {path}: {exc}") from exc
    locked = lock_versions(lockfile)
    designs: dict[str, Design] = {}
    for i, entry in enumerate(data.get("design", [])):
        absent = [k for k in _REQUIRED if k not in entry]
        if absent:
            raise HarnessError(
                f"{path}: design #{i + 1} lacks {', '.join(absent)}; add them (see its header)"
            )
        if entry.get("ready", "line") not in ("line", "port"):
            raise HarnessError(f"{path}: design {entry['name']}: ready must be 'line' or 'port'")
        designs[entry["name"]] = Design(
            name=entry["name"],
            family=entry["family"],
            io_model=entry["io_model"],
            language=entry["language"],
            protocols=tuple(entry["protocols"]),
            command=entry["command"],
            ready=entry.get("ready", "line"),
            pins_itself=bool(entry.get("pins_itself", False)),
            counters=bool(entry.get("counters", False)),
            summary=entry.get("summary", ""),
            default=bool(entry.get("default", False)),
            work=bool(entry.get("work", False)),
            conformance=dict(entry.get("conformance", {})),
            **_factor_fields(path, entry, locked, lockfile),  # type: ignore[arg-type]
        )
    return designs


@dataclass(frozen=True)
class Pair:
    """Two designs that differ in exactly one factor: `a` has `a_value`, `b` has `b_value`."""

    a: str
    b: str
    factor: str
    a_value: str
    b_value: str


@dataclass(frozen=True)
class Step:
    """One step of a factor chain: from `before` to `after`, changing `factor` only."""

    before: str
    after: str
    factor: str
    before_value: str
    after_value: str


def _only_difference(a: Design, b: Design) -> str | None:
    """The one factor a and b differ in, or None (none, several, or one is undeclared)."""
    fa, fb = a.factors(), b.factors()
    if any(v is None for v in (*fa.values(), *fb.values())):
        return None
    differing = [f for f in PAIR_FACTORS if fa[f] != fb[f]]
    return differing[0] if len(differing) == 1 else None


def controlled_pairs(designs: Iterable[Design]) -> list[Pair]:
    """Every controlled pair among `designs`, `a` before `b` by name, sorted by factor order."""
    ds = sorted(designs, key=lambda d: d.name)
    pairs = []
    for i, a in enumerate(ds):
        for b in ds[i + 1 :]:
            factor = _only_difference(a, b)
            if factor is not None:
                pairs.append(
                    Pair(a.name, b.name, factor, str(getattr(a, factor)), str(getattr(b, factor)))
                )
    return sorted(pairs, key=lambda p: (PAIR_FACTORS.index(p.factor), p.a, p.b))


def factor_chain(
    designs: Iterable[Design], start: str, end: str, via: Sequence[str] = ()
) -> list[Step] | None:
    """The path of controlled pairs from design `start` to design `end`, one factor per step.

    The shortest such path; among several, each step takes the factor earliest in PAIR_FACTORS
    (accept, then scheduler, runtime, io), then the design whose name sorts first, so the same
    designs always give the same chain. `via`: designs the chain must pass in that order (e.g.
    glommio-tpc via monoio-tpc, to extend monoio's chain by one step).
    [] when start == end; None when a design is absent or no path of controlled pairs joins them.
    """
    designs = list(designs)
    if via:
        stops = [start, *via, end]
        chain: list[Step] = []
        for a, b in itertools.pairwise(stops):
            leg = factor_chain(designs, a, b)
            if leg is None:
                return None
            chain += leg
        return chain
    by_name = {d.name: d for d in designs}
    if start not in by_name or end not in by_name:
        return None
    if start == end:
        return []
    neighbours: dict[str, list[tuple[str, str]]] = {n: [] for n in by_name}
    for p in controlled_pairs(by_name.values()):
        neighbours[p.a].append((p.b, p.factor))
        neighbours[p.b].append((p.a, p.factor))
    # Distance of every design to `end`, so the walk below only takes steps that stay shortest.
    to_end = {end: 0}
    queue = deque([end])
    while queue:
        node = queue.popleft()
        for other, _ in neighbours[node]:
            if other not in to_end:
                to_end[other] = to_end[node] + 1
                queue.append(other)
    if start not in to_end:
        return None

    steps: list[Step] = []
    here = by_name[start]
    while here.name != end:
        # Of the steps that stay on a shortest path, the earliest factor, then the first name.
        name, factor = min(
            ((n, f) for n, f in neighbours[here.name] if to_end.get(n) == to_end[here.name] - 1),
            key=lambda nf: (PAIR_FACTORS.index(nf[1]), nf[0]),
        )
        there = by_name[name]
        steps.append(
            Step(here.name, name, factor, str(getattr(here, factor)), str(getattr(there, factor)))
        )
        here = there
    return steps
