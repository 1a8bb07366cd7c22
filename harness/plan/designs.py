"""The design registry (servers/registry.toml): what each server design is and how to start it."""

from __future__ import annotations

import shlex
import shutil
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REGISTRY = REPO_ROOT / "servers" / "registry.toml"
DEFAULT_BIN_DIR = REPO_ROOT / "target" / "release"


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
    # What conformance tolerates from a server nobody here wrote (harness/conformance.py).
    conformance: dict[str, object] = field(default_factory=dict)

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


def load_registry(path: Path = DEFAULT_REGISTRY) -> dict[str, Design]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise HarnessError(f"cannot read the design registry {path}: {exc}") from exc
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
        )
    return designs
