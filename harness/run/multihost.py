"""One trial across hosts (docs/multi-host.md): the server pinned on the server host, one load
generator pinned on each client host, all started together over SSH, every file fetched back.

A `HostSession` holds the run's connections, the binaries placed on each host and a scratch
directory per client host; `run_trial` is the multi-host counterpart of harness.run.trial's. Like
it, a trial never raises for a failure of what is measured: a host that dies, hangs or loses its
connection fails the trial with the host named, every process the trial started is killed (over
SSH, and by the leash when the connection is gone), and the run goes on. The hosts' documents
are merged into the trial's one by harness.run.host_merge (histograms through harness.buckets).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.plan.designs import Design
from harness.plan.hosts_plan import ClientShare, HostLayout
from harness.plan.plan import TrialSpec
from harness.plan.topology import format_cpu_list
from harness.run import clock, host_merge, placement, procs, remote, sampler, trial
from harness.run.host_trial import (
    HostsTrial,
    ServerWindow,
    TrialFailed,
    add_samples,
    poll_hosts,
    stop_server,
    wait_ready,
)
from harness.run.hosts import LOCAL, SshOptions, parse_host
from harness.run.local_host import LocalConnection, local_offset
from harness.run.remote import Connection, RemoteError
from harness.run.trial import HostsTrialResult

START_LEAD_S = 1.5  # from telling the load generators the start time to the start itself
CLOCK_ROUNDS = 8  # per trial; the session's first measurement uses clock.DEFAULT_ROUNDS
_FREE_PORT_SCRIPT = (
    # A TCP port nobody listens on there: ss (iproute2) asked for each candidate.
    'for p in "$@"; do if [ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ]; then echo "$p"; '
    "exit 0; fi; done; exit 1"
)


def host_tag(host: str) -> str:
    """A file-name-safe form of a host spec (root@198.18.0.3:2222 -> root_198.18.0.3_2222)."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", host).strip("_")


def _now() -> str:
    return trial._now()


class HostSession:
    """The hosts of one run: connect, place binaries, measure clocks; then trial after trial."""

    def __init__(
        self,
        layout: HostLayout,
        options: SshOptions,
        *,
        bin_dir: Path,
        remote_bin: str | None = None,
        remote_dir: str = placement.DEFAULT_REMOTE_DIR,
    ) -> None:
        self.layout = layout
        self.options = options
        self.bin_dir = bin_dir
        self.remote_bin = remote_bin
        self.remote_dir = remote_dir  # where binaries are placed (relative: to the home there)
        self.conns: dict[str, Connection] = {}
        self.loadgen: dict[str, str] = {}  # client host -> the load generator's path there
        self.workdir: dict[str, str] = {}  # client host -> its scratch directory
        self.server_bin_dir: str | None = None
        self.placements: list[dict[str, Any]] = []
        self.offsets: dict[str, clock.ClockOffset] = {}
        self.assign: Callable[[int], Any] | None = None  # k -> CpuAssignment (the cli's plan)

    @property
    def hosts(self) -> list[str]:
        return [self.layout.server_host, *self.layout.client_hosts]

    def conn(self, host: str) -> Connection:
        """The host's connection, connecting again if it was lost (RemoteError naming it)."""
        c = self.conns.get(host)
        if c is not None and c.ssh is not None and not c.lost:
            return c
        if c is not None:
            c.close()
        c = LocalConnection() if host == LOCAL else remote.connect(parse_host(host), self.options)
        self.conns[host] = c
        if host in self.workdir:
            c.run(["mkdir", "-p", self.workdir[host]], timeout_s=10)
        return c

    def open(self, designs: list[Design]) -> dict[str, Any]:
        """Connect to every host, place the load generator and the designs' binaries, measure
        the clocks; what the manifest records about it."""
        atexit.register(self.close)  # scratch directories go even if the run never starts
        for h in self.hosts:
            self.conn(h)
        for h in self.layout.client_hosts:
            self._place_loadgen(h)
        for d in designs:
            self._place_design(d)
        self.offsets = {h: self._offset(h, clock.DEFAULT_ROUNDS) for h in self.hosts}
        return {
            "layout": self.layout.as_dict(),
            "binaries": self.placements,
            "clock_offsets": {h: o.as_dict() for h, o in self.offsets.items()},
        }

    def _place_loadgen(self, h: str) -> None:
        """The load generator on a client host (this machine: where it was built), and a
        scratch directory there."""
        local_loadgen = self.bin_dir / "loadgen"
        if h == LOCAL:
            self.loadgen[h] = str(local_loadgen)
            self.placements.append({"host": h, "path": str(local_loadgen), "sha256":
                                    placement.sha256_file(local_loadgen), "source": "local",
                                    "program": "loadgen"})  # fmt: skip
        else:
            placed = placement.place_binary(
                self.conns[h], local_loadgen, remote_bin=self.remote_bin, remote_dir=self.remote_dir
            )
            self.loadgen[h] = placed.path
            self.placements.append({**placed.as_dict(), "program": "loadgen"})
        made = self.conns[h].run(
            ["sh", "-c", 'mktemp -d "${TMPDIR:-/tmp}/executor-bench.XXXXXX"'], timeout_s=10
        )
        self.workdir[h] = made.stdout.strip()

    def _place_design(self, d: Design) -> None:
        """A design's binary on the server host (this machine runs every design as it is)."""
        exe = Path(d.argv(bin_dir=self.bin_dir, protocol="echo", host="0", port=0, threads=1,
                          cpus="0")[0])  # fmt: skip
        if self.layout.server_host == LOCAL:
            self.server_bin_dir = str(self.bin_dir)
            return
        if exe.parent.resolve() != self.bin_dir.resolve() or not exe.is_file():
            raise RemoteError(
                f"{self.layout.server_host}: design {d.name} runs `{exe}`, not a binary of "
                f"--bin-dir {self.bin_dir}, so it cannot be copied to the server host; leave "
                "it out of --servers"
            )
        try:
            placed = placement.place_binary(
                self.conns[self.layout.server_host], exe, remote_dir=self.remote_dir
            )
        except RemoteError as exc:
            why = str(exc).replace(
                "; build it there and pass --remote-bin PATH",
                "; the server host must be able to run this machine's build (same "
                "architecture, a C library at least as new)",
            )
            raise RemoteError(why) from None
        self.server_bin_dir = placed.path.rsplit("/", 1)[0]
        self.placements.append({**placed.as_dict(), "program": exe.name})

    def close(self) -> None:
        """Remove the scratch directories and end every connection; never raises."""
        for h, d in self.workdir.items():
            c = self.conns.get(h)
            if c is not None and c.ssh is not None and not c.lost and d.startswith("/"):
                with contextlib.suppress(RemoteError, OSError):
                    c.run(["rm", "-rf", "--", d], timeout_s=10, check=False)
        for c in self.conns.values():
            c.close()
        self.conns.clear()

    def _offset(self, host: str, rounds: int) -> clock.ClockOffset:
        return local_offset() if host == LOCAL else clock.measure_offset(self.conns[host], rounds)

    def address(self, host: str) -> str:
        """The address the other hosts reach `host` at: its name, or for this machine its source
        address on the route to the other side (the server host, or the first client host)."""
        if host != LOCAL:
            return parse_host(host).name
        other = self.layout.server_host
        other = self.layout.client_hosts[0] if other == LOCAL else other
        peer = parse_host(other).name
        out = self.conn(LOCAL).run(["ip", "-o", "route", "get", peer], timeout_s=10).stdout
        words = out.split()
        if "src" not in words[:-1]:
            raise RemoteError(f"local: no source address on the route to {peer}: {out!r}")
        return words[words.index("src") + 1]

    # -- one trial -----------------------------------------------------------------------------
    def server_addr(self) -> tuple[str, str]:
        """(the address the load generators connect to, the one the server listens on)."""
        if self.layout.server_host == LOCAL:
            src = self.address(LOCAL)
            return src, src
        name = parse_host(self.layout.server_host).name
        is_ip = re.fullmatch(r"[0-9.]+|[0-9A-Fa-f:]+", name) is not None
        return name, name if is_ip else "0.0.0.0"

    def _free_port(self, c: Connection) -> int:
        candidates = [str(20000 + (time.time_ns() // 1000 + 7919 * i) % 40000) for i in range(20)]
        out = c.run(["sh", "-c", _FREE_PORT_SCRIPT, "sh", *candidates], timeout_s=10)
        return int(out.stdout.strip())

    def _server_argv(self, spec: TrialSpec, design: Design, listen: str, port: int) -> list[str]:
        assert self.server_bin_dir is not None
        cpus = format_cpu_list(spec.cpus.server)
        argv = design.argv(
            bin_dir=Path(self.server_bin_dir), protocol=spec.protocol, host=listen, port=port,
            threads=spec.server_cores, cpus=cpus,
        )  # fmt: skip
        if spec.work != "none":
            argv += ["--work", spec.work, "--seed", str(spec.seed)]
        return argv if design.pins_itself else ["taskset", "-c", cpus, *argv]

    def _loadgen_argv(
        self, spec: TrialSpec, share: ClientShare, addr: str, port: int, start_ns: int
    ) -> tuple[list[str], str, str]:
        work = self.workdir[share.host]
        out = f"{work}/{spec.trial_id}.loadgen.json"
        mine = replace(
            spec,
            connections=share.connections,
            rate=share.rate,
            cpus=replace(spec.cpus, client=share.cpus),
        )
        argv = trial.loadgen_argv(mine, Path(self.loadgen[share.host]), port, Path(out))
        argv[argv.index("--host") + 1] = addr
        hlog = argv[argv.index("--hlog") + 1]
        argv += ["--start-at", f"{start_ns // 1_000_000_000}.{start_ns % 1_000_000_000:09d}"]
        return argv, out, hlog

    def _sample(
        self, c: Connection, pid: int
    ) -> tuple[sampler.TreeSample | None, dict[int, tuple[float, float]]]:
        """The server's processes and threads, and the host's per-CPU times, from its /proc
        (copied here, read by the sampler as this machine's)."""
        with tempfile.TemporaryDirectory(prefix="host-proc-") as tmp:
            root = Path(tmp)
            remote.mirror(c, ["/proc/stat", "/proc/[0-9]*/stat"], root)
            cpus = sampler.cpu_times(proc=root / "proc")
            pids = sampler.descendants(pid, proc=root / "proc")
            pats = [f"/proc/{p}/{f}" for p in pids for f in ("stat", "task/[0-9]*/stat",
                                                          "task/[0-9]*/status")]  # fmt: skip
            remote.mirror(c, pats, root)
            found = sampler.sample(pids, proc=root / "proc")
        return (found if found.threads else None), cpus

    def run_trial(
        self, spec: TrialSpec, design: Design, bin_dir: Path, raw: Path
    ) -> trial.TrialResult:
        """One trial across the hosts; bin_dir is unused (the binaries were placed by open)."""
        t = HostsTrial(spec, raw, _now(), self.layout.server_host)
        try:
            srv_conn = self._start_server(t, design)
            self._start_clients(t)
            window = self._watch(t, srv_conn)
            result = self._collect(t)
            add_samples(result, spec, window)
            result.counters, notes = stop_server(t.srv, design)
            return trial.conclude(result, result.counters, notes, raw)
        except TrialFailed as failed:
            return t.fail(failed)
        finally:
            for p in t.clients.values():
                p.kill()
            if t.srv is not None:
                t.srv.kill()

    def _start_server(self, t: HostsTrial, design: Design) -> Connection:
        """The server started on a free port of the server host, and READY."""
        try:
            srv_conn = self.conn(t.server_host)
        except RemoteError as exc:
            raise TrialFailed("server_start", f"server host {exc}") from None
        for h in self.layout.client_hosts:
            try:
                t.conns[h] = self.conn(h)
            except RemoteError as exc:
                raise TrialFailed("host_lost", f"client host {exc}") from None
        try:
            t.addr, listen = self.server_addr()
            t.port = self._free_port(srv_conn)
            t.srv = srv_conn.start(
                self._server_argv(t.spec, design, listen, t.port), stderr=t.file("server.log")
            )
        except (RemoteError, ValueError) as exc:
            raise TrialFailed("server_start", f"server host {exc}") from None
        why = wait_ready(t.srv, t.file("server.log"), t.settings)
        if why:
            raise TrialFailed("server_start", f"server on {t.server_host} {why}")
        return srv_conn

    def _start_clients(self, t: HostsTrial) -> None:
        """Every client host's share of the load, started at one moment of the common clock
        (what was started where is written to <trial>.hosts.json)."""
        try:
            t.offsets = {h: self._offset(h, CLOCK_ROUNDS) for h in t.conns}
        except RemoteError as exc:
            raise TrialFailed("host_lost", f"client host {exc}") from None
        shares = self.layout.shares(t.spec.connections, t.spec.rate)
        t.start_local = time.time_ns() + int(START_LEAD_S * 1e9)
        for share in shares:
            h = share.host
            argv, out, hlog = self._loadgen_argv(
                t.spec, share, t.addr, t.port, t.offsets[h].to_host(t.start_local)
            )
            t.files[h] = (out, hlog)
            try:
                t.clients[h] = t.conns[h].start(argv, stderr=t.file(f"{host_tag(h)}.loadgen.log"))
            except RemoteError as exc:
                raise TrialFailed("host_lost", f"client host {exc}") from None
        started = {
            "server_host": t.server_host,
            "server": {"addr": t.addr, "port": t.port, "cpus": list(t.spec.cpus.server)},
            "start_local_ns": t.start_local,
            "clock_offsets": {h: o.as_dict() for h, o in t.offsets.items()},
            "shares": [vars(s) | {"cpus": list(s.cpus)} for s in shares],
        }
        t.file("hosts.json").write_text(json.dumps(started, indent=2) + "\n")

    def _watch(self, t: HostsTrial, srv_conn: Connection) -> ServerWindow:
        """Until every load generator ended: the server watched (its samples as the window
        opens and after) and the trial failed if a host dies or runs past its limit."""
        assert t.srv is not None
        window = ServerWindow()
        window_open = t.start_local / 1e9 + t.spec.warmup_s
        limit = time.time() + START_LEAD_S + t.spec.warmup_s + t.spec.duration_s
        limit += t.spec.timeout_s + trial.LOADGEN_SLACK_S
        pending = dict(t.clients)
        while pending:
            poll_hosts(t, pending)
            if window.before is None and time.time() >= window_open and t.srv.pgid:
                with contextlib.suppress(RemoteError):
                    window.before, window.before_cpus = self._sample(srv_conn, t.srv.pgid)
            if time.time() > limit:
                raise TrialFailed(
                    "loadgen_overran",
                    f"load generator on {', '.join(pending)} still running "
                    f"{limit - t.start_local / 1e9:.0f} s after the start; killed",
                )
            time.sleep(0.05)
        if window.before is not None and t.srv.pgid:
            with contextlib.suppress(RemoteError):
                window.after, window.after_cpus = self._sample(srv_conn, t.srv.pgid)
        return window

    def _collect(self, t: HostsTrial) -> HostsTrialResult:
        """Every client host's files fetched into raw/, and their documents merged into the
        trial's (throughput over the common window, histograms summed)."""
        per_host: dict[str, dict[str, Any]] = {}
        for h, p in t.clients.items():
            local_json = t.file(f"{host_tag(h)}.loadgen.json")
            try:
                t.conns[h].get(t.files[h][0], local_json)
                t.conns[h].get(t.files[h][1], t.file(f"{host_tag(h)}.hlog"))
                t.conns[h].run(["rm", "-f", "--", *t.files[h]], timeout_s=10, check=False)
            except RemoteError as exc:
                if not local_json.exists():
                    log = t.file(f"{host_tag(h)}.loadgen.log")
                    why = procs.tail(log) or exc
                    raise TrialFailed(
                        "loadgen_failed",
                        f"client host {h}: load generator failed (exit {p.returncode}): {why}",
                    ) from None
            try:
                per_host[h] = json.loads(local_json.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise TrialFailed(
                    "loadgen_failed", f"client host {h}: load generator wrote invalid JSON: {exc}"
                ) from None
        result = HostsTrialResult(
            t.spec, "ok", "", t.started, "", per_host=per_host, server_host=t.server_host,
            port=t.port, port_attempts=1, server_settings=t.settings.get("line"),
        )  # fmt: skip
        starts = {
            h: int(d["clock"]["window_start_unix_ns"]) - t.offsets[h].offset_ns
            for h, d in per_host.items()
        }
        try:
            result.loadgen = host_merge.merge_reports(per_host, starts)
        except ValueError as exc:
            why = f"the hosts' results cannot be merged: {exc}"
            raise TrialFailed("hosts_unmergeable", why, per_host=per_host) from None
        t.file("loadgen.json").write_text(json.dumps(result.loadgen) + "\n")
        return result
