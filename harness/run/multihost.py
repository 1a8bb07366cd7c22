"""One trial across hosts (docs/multi-host.md): the server pinned on the server host, one load
generator pinned on each client host, all started together over SSH, every file fetched back.

A `HostSession` holds the run's connections, the binaries placed on each host and a scratch
directory per client host; `run_trial` is the multi-host counterpart of harness.run.trial's. Like
it, a trial never raises for a failure of what is measured: a host that dies, hangs or loses its
connection fails the trial with the host named, every process the trial started is killed (over
SSH, and by the leash when the connection is gone), and the run goes on. The merge of the
hosts' documents is handed in (harness.analysis.host_merge.merge_reports), as the store is
handed to execute, so this stage does not import a later one.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.plan.designs import Design
from harness.plan.hosts_plan import ClientShare, HostLayout
from harness.plan.plan import TrialSpec
from harness.plan.topology import format_cpu_list
from harness.run import clock, placement, procs, remote, sampler, server, trial
from harness.run.hosts import LOCAL, SshOptions, parse_host
from harness.run.local_host import LocalConnection, local_offset
from harness.run.remote import Connection, RemoteError, RemoteProcess
from harness.run.trial import HostsTrialResult

MergeFn = Callable[[Mapping[str, dict[str, Any]], Mapping[str, int]], dict[str, Any]]
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
        merge: MergeFn,
        remote_bin: str | None = None,
        remote_dir: str = placement.DEFAULT_REMOTE_DIR,
    ) -> None:
        self.layout = layout
        self.options = options
        self.bin_dir = bin_dir
        self.merge = merge
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
        local_loadgen = self.bin_dir / "loadgen"
        for h in self.layout.client_hosts:
            if h == LOCAL:  # this machine: the binary where it was built
                self.loadgen[h] = str(local_loadgen)
                self.placements.append({"host": h, "path": str(local_loadgen), "sha256":
                                        placement.sha256_file(local_loadgen), "source": "local",
                                        "program": "loadgen"})  # fmt: skip
                self.workdir[h] = (
                    self.conns[h]
                    .run(
                        ["sh", "-c", 'mktemp -d "${TMPDIR:-/tmp}/executor-bench.XXXXXX"'],
                        timeout_s=10,
                    )
                    .stdout.strip()
                )
                continue
            placed = placement.place_binary(
                self.conns[h], local_loadgen, remote_bin=self.remote_bin, remote_dir=self.remote_dir
            )
            self.loadgen[h] = placed.path
            self.placements.append({**placed.as_dict(), "program": "loadgen"})
            made = self.conns[h].run(
                ["sh", "-c", 'mktemp -d "${TMPDIR:-/tmp}/executor-bench.XXXXXX"'], timeout_s=10
            )
            self.workdir[h] = made.stdout.strip()
        srv = self.conns[self.layout.server_host]
        for d in designs:
            exe = Path(d.argv(bin_dir=self.bin_dir, protocol="echo", host="0", port=0, threads=1,
                              cpus="0")[0])  # fmt: skip
            if self.layout.server_host == LOCAL:  # this machine runs every design as it is
                self.server_bin_dir = str(self.bin_dir)
                continue
            if exe.parent.resolve() != self.bin_dir.resolve() or not exe.is_file():
                raise RemoteError(
                    f"{self.layout.server_host}: design {d.name} runs `{exe}`, not a binary of "
                    f"--bin-dir {self.bin_dir}, so it cannot be copied to the server host; leave "
                    "it out of --servers"
                )
            try:
                placed = placement.place_binary(srv, exe, remote_dir=self.remote_dir)
            except RemoteError as exc:
                why = str(exc).replace(
                    "; build it there and pass --remote-bin PATH",
                    "; the server host must be able to run this machine's build (same "
                    "architecture, a C library at least as new)",
                )
                raise RemoteError(why) from None
            self.server_bin_dir = placed.path.rsplit("/", 1)[0]
            self.placements.append({**placed.as_dict(), "program": exe.name})
        self.offsets = {h: self._offset(h, clock.DEFAULT_ROUNDS) for h in self.hosts}
        return {
            "layout": self.layout.as_dict(),
            "binaries": self.placements,
            "clock_offsets": {h: o.as_dict() for h, o in self.offsets.items()},
        }

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
        started = _now()
        server_host = self.layout.server_host
        per_host: dict[str, dict[str, Any]] = {}
        chosen: list[int] = []  # the server's port, once picked (free there, checked by ss)

        def fail(reason: str, **kw: Any) -> HostsTrialResult:
            port_kw = {"port": chosen[0], "port_attempts": 1} if chosen else {}
            return HostsTrialResult(
                spec, "failed", reason, started, _now(), server_host=server_host, **port_kw, **kw
            )

        srv: RemoteProcess | None = None
        clients: dict[str, RemoteProcess] = {}
        try:
            try:
                srv_conn = self.conn(server_host)
            except RemoteError as exc:
                return fail(f"server host {exc}")
            conns: dict[str, Connection] = {}
            for h in self.layout.client_hosts:
                try:
                    conns[h] = self.conn(h)
                except RemoteError as exc:
                    return fail(f"client host {exc}")
            try:
                addr, listen = self.server_addr()
                port = self._free_port(srv_conn)
                chosen.append(port)
                srv = srv_conn.start(
                    self._server_argv(spec, design, listen, port),
                    stderr=raw / f"{spec.trial_id}.server.log",
                )
            except (RemoteError, ValueError) as exc:
                return fail(f"server host {exc}")
            settings: dict[str, Any] = {}
            why = _wait_ready(srv, raw / f"{spec.trial_id}.server.log", settings)
            if why:
                return fail(f"server on {server_host} {why}")
            try:
                offsets = {h: self._offset(h, CLOCK_ROUNDS) for h in conns}
            except RemoteError as exc:
                return fail(f"client host {exc}")
            shares = self.layout.shares(spec.connections, spec.rate)
            start_local = time.time_ns() + int(START_LEAD_S * 1e9)
            files: dict[str, tuple[str, str]] = {}
            for share in shares:
                h = share.host
                argv, out, hlog = self._loadgen_argv(
                    spec, share, addr, port, offsets[h].to_host(start_local)
                )
                files[h] = (out, hlog)
                log = raw / f"{spec.trial_id}.{host_tag(h)}.loadgen.log"
                try:
                    clients[h] = conns[h].start(argv, stderr=log)
                except RemoteError as exc:
                    return fail(f"client host {exc}")
            (raw / f"{spec.trial_id}.hosts.json").write_text(
                json.dumps(
                    {
                        "server_host": server_host,
                        "server": {"addr": addr, "port": port, "cpus": list(spec.cpus.server)},
                        "start_local_ns": start_local,
                        "clock_offsets": {h: o.as_dict() for h, o in offsets.items()},
                        "shares": [vars(s) | {"cpus": list(s.cpus)} for s in shares],
                    },
                    indent=2,
                )
                + "\n"
            )
            window_open = start_local / 1e9 + spec.warmup_s
            limit = time.time() + START_LEAD_S + spec.warmup_s + spec.duration_s
            limit += spec.timeout_s + trial.LOADGEN_SLACK_S
            before = after = None
            before_cpus: dict[int, tuple[float, float]] = {}
            pending = dict(clients)
            while pending:
                for h, p in list(pending.items()):
                    try:
                        if p.poll() is not None:
                            del pending[h]
                    except RemoteError:
                        return fail(
                            f"client host {h} failed during the trial: its load generator "
                            f"ended without an exit status ({p.error})"
                        )
                try:
                    code = srv.poll()
                except RemoteError:
                    return fail(f"server host {server_host} failed during the trial ({srv.error})")
                if code is not None:
                    tail = procs.tail(raw / f"{spec.trial_id}.server.log")
                    return fail(f"server on {server_host} died during the trial (exit {code}): "
                                f"{tail}")  # fmt: skip
                if before is None and time.time() >= window_open and srv.pgid:
                    with contextlib.suppress(RemoteError):
                        before, before_cpus = self._sample(srv_conn, srv.pgid)
                if time.time() > limit:
                    return fail(
                        f"load generator on {', '.join(pending)} still running "
                        f"{limit - start_local / 1e9:.0f} s after the start; killed"
                    )
                time.sleep(0.05)
            after_cpus: dict[int, tuple[float, float]] = {}
            if before is not None and srv.pgid:
                with contextlib.suppress(RemoteError):
                    after, after_cpus = self._sample(srv_conn, srv.pgid)
            for h, p in clients.items():
                tag = host_tag(h)
                local_json = raw / f"{spec.trial_id}.{tag}.loadgen.json"
                try:
                    conns[h].get(files[h][0], local_json)
                    conns[h].get(files[h][1], raw / f"{spec.trial_id}.{tag}.hlog")
                    conns[h].run(["rm", "-f", "--", *files[h]], timeout_s=10, check=False)
                except RemoteError as exc:
                    if not local_json.exists():
                        log = raw / f"{spec.trial_id}.{tag}.loadgen.log"
                        return fail(f"client host {h}: load generator failed (exit "
                                    f"{p.returncode}): {procs.tail(log) or exc}")  # fmt: skip
                try:
                    per_host[h] = json.loads(local_json.read_text())
                except (OSError, json.JSONDecodeError) as exc:
                    return fail(f"client host {h}: load generator wrote invalid JSON: {exc}")
            result = HostsTrialResult(
                spec, "ok", "", started, "", per_host=per_host, server_host=server_host,
                port=port, port_attempts=1, server_settings=settings.get("line"),
            )  # fmt: skip
            starts = {
                h: int(d["clock"]["window_start_unix_ns"]) - offsets[h].offset_ns
                for h, d in per_host.items()
            }
            try:
                result.loadgen = self.merge(per_host, starts)
            except ValueError as exc:
                return fail(f"the hosts' results cannot be merged: {exc}", per_host=per_host)
            (raw / f"{spec.trial_id}.loadgen.json").write_text(json.dumps(result.loadgen) + "\n")
            if before is not None and after is not None:
                result.threads = sampler.thread_rows(spec.trial_id, "server", before, after)
                result.server_cpu_s = sum(r["cpu_s"] for r in result.threads)
                result.server_rss_bytes = after.rss_bytes
                # The contended flag, on the server host's CPUs (the client hosts' CPU ids are
                # other machines' and are not judged).
                result.cpu_busy = sampler.cpu_deltas(before_cpus, after_cpus, set(spec.cpus.server))
            result.counters, notes = _stop(srv, design)
            if result.counters is not None:
                (raw / f"{spec.trial_id}.server.json").write_text(
                    json.dumps(result.counters) + "\n"
                )
            summary = result.loadgen["summary"]
            if not summary["requests"]:
                kinds = ", ".join(f"{k}={v}" for k, v in summary["errors"].items() if v) or "none"
                notes.insert(0, f"no request succeeded (errors: {kinds})")
            if notes:
                result.status, result.reason = "failed", "; ".join(notes)
            result.ended_at = _now()
            return result
        finally:
            for p in clients.values():
                p.kill()
            if srv is not None:
                srv.kill()


def _wait_ready(srv: RemoteProcess, log: Path, settings: dict[str, Any]) -> str | None:
    """None once the server printed READY; otherwise why not. Other lines before READY are
    skipped, but its `server-settings/1` line goes into settings["line"], as on one machine."""
    deadline = time.monotonic() + server.READY_TIMEOUT_S
    while time.monotonic() < deadline:
        line = srv.read_line(0.1)
        if line is not None and line.strip() == "READY":
            return None
        if line is not None and (parsed := server.parse_settings(line)) is not None:
            settings.setdefault("line", parsed)
        try:
            code = srv.poll()
        except RemoteError as exc:
            return f"was lost before it was ready ({exc})"
        if code is not None:
            tail = procs.tail(log)
            return f"exited with code {code} before it was ready" + (f": {tail}" if tail else "")
    return f"not ready after {server.READY_TIMEOUT_S:.0f} s"


def _stop(srv: RemoteProcess, design: Design) -> tuple[dict[str, Any] | None, list[str]]:
    """SIGTERM, the counters line (if the design prints one) and what went wrong."""
    notes: list[str] = []
    code: int | None = None
    try:
        srv.send_signal("TERM")
        code = srv.wait(server.SHUTDOWN_LIMIT_S)
    except RemoteError as exc:
        late = f"server still running {server.SHUTDOWN_LIMIT_S:.0f} s after SIGTERM"
        notes.append(late if "still running" in str(exc) else f"server: {exc}")
    out = srv.stdout_bytes.decode(errors="replace")
    counters = None
    if design.counters:
        line = next((ln for ln in out.splitlines() if ln.lstrip().startswith("{")), None)
        with contextlib.suppress(json.JSONDecodeError):
            counters = json.loads(line) if line else None
        if counters is None:
            notes.append("server printed no counters after SIGTERM")
    if code not in (None, 0):
        notes.append(f"server exited with code {code} after SIGTERM")
    return counters, notes
