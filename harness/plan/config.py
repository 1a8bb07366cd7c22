"""Run options, in increasing precedence: built-in defaults, a named profile
(`--profile quick|ci|full`, profiles/*.toml) or a plan file (`--plan FILE.toml` or a run's
manifest.json), and the command line; resolved into a `RunConfig` for this machine."""

from __future__ import annotations

import argparse
import json
import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.plan import cpus as cpu_planning
from harness.plan.designs import Design
from harness.plan.measure import check_measure
from harness.plan.numbers import finite
from harness.plan.plan import RunConfig
from harness.plan.topology import (
    SYSFS_CPU,
    Topology,
    from_description,
    read_topology,
    restrict,
)

PROFILES = Path(__file__).resolve().parent / "profiles"


def _list_of(kind: Callable[[str], Any], flag: str, minimum: float | None = 1):
    def parse(text: str | list | int | float) -> tuple:
        items = text if isinstance(text, list) else str(text).split(",")
        try:
            values = tuple(finite(kind(str(x).strip()), flag) for x in items if str(x).strip())
        except ValueError:
            raise HarnessError(
                f"{flag} takes comma-separated {kind.__name__} values, "
                f"got {text!r}; e.g. {flag} 1,2,4"
            ) from None
        # rates and rate-sweep (no minimum) may be empty: a closed-loop manifest stores []
        if minimum is not None and (not values or any(v < minimum for v in values)):
            raise HarnessError(
                f"{flag} values must be {minimum} or more, got {text!r}; e.g. {flag} 1,2,4"
            )
        return values

    return parse


def _names(text: str | list) -> tuple[str, ...]:
    items = text if isinstance(text, list) else str(text).split(",")
    return tuple(str(x).strip() for x in items if str(x).strip())


KEEP_ALIVE = "keep-alive"


def _churn(text: str | list | int) -> tuple[int | None, ...]:
    """--requests-per-connection: counts and/or keep-alive (None), e.g. keep-alive,16,1; a
    manifest from before the list holds one count."""
    items = text if isinstance(text, list) else str(text).split(",")
    out: list[int | None] = []
    for x in items:
        word = KEEP_ALIVE if x is None else str(x).strip()
        if not word:
            continue
        if word == KEEP_ALIVE:
            out.append(None)
            continue
        try:
            n = int(word)
        except ValueError:
            n = 0
        if n < 1:
            raise HarnessError(
                f"--requests-per-connection takes counts of 1 or more and/or {KEEP_ALIVE}, "
                f"got {text!r}; e.g. --requests-per-connection {KEEP_ALIVE},16,1"
            )
        out.append(n)
    if not out:
        raise HarnessError(
            f"--requests-per-connection got no value; e.g. --requests-per-connection {KEEP_ALIVE},1"
        )
    return tuple(out)


def _scalar(kind: Callable[[str], Any], flag: str):
    def parse(text: Any) -> Any:
        try:
            return finite(kind(text), flag)
        except (TypeError, ValueError):
            raise HarnessError(f"{flag} takes a {kind.__name__}, got {text!r}") from None

    return parse


# flag -> (RunConfig field, parser, default). The plan file uses the flag names without "--".
RUN_OPTIONS: dict[str, tuple[str, Callable[[Any], Any], Any]] = {
    "servers": ("servers", _names, None),
    "protocols": ("protocols", _names, ("echo",)),
    "cores": ("cores", _list_of(int, "--cores"), None),
    "connections": ("connections", _list_of(int, "--connections"), (64,)),
    "connections-per-core": (
        "connections_per_core",
        _list_of(int, "--connections-per-core"),
        (),
    ),
    "size": ("sizes", _list_of(int, "--size"), (64,)),
    "duration": ("duration_s", _scalar(float, "--duration"), 4.0),
    "warmup": ("warmup_s", _scalar(float, "--warmup"), 1.0),
    "repeat": ("repeat", _scalar(int, "--repeat"), 6),
    "timeout": ("timeout_s", _scalar(float, "--timeout"), 2.0),
    "client-cpus": ("client_cpus", _scalar(int, "--client-cpus"), None),
    "seed": ("seed", _scalar(int, "--seed"), None),
    "mode": ("mode", str, "closed"),
    "rates": ("rates", _list_of(float, "--rates", None), ()),
    "rate-sweep": ("rate_sweep", _list_of(float, "--rate-sweep", None), ()),
    "arrival": ("arrival", str, "poisson"),
    "pipeline": ("pipeline", _list_of(int, "--pipeline"), (1,)),
    "work": ("works", _names, ("none",)),
    "hot-fraction": ("hot_fraction", _scalar(float, "--hot-fraction"), None),
    "hot-share": ("hot_share", _scalar(float, "--hot-share"), None),
    "measure": ("measure", str, None),
    "rate-fractions": ("rate_fractions", _list_of(float, "--rate-fractions", None), (0.5,)),
    "requests-per-connection": ("requests_per_connection", _churn, (None,)),
    # Several hosts (docs/multi-host.md); in a plan file also `client_hosts = [...]`.
    "server-host": ("server_host", str, "local"),
    "client-host": (
        "client_hosts",
        lambda v: _names(",".join(map(str, v)) if isinstance(v, list) else v),
        (),
    ),
    "remote-bin": ("remote_bin", str, None),
    "ssh-key": ("ssh_key", str, None),
    "known-hosts": ("known_hosts", str, None),
}
RUN_HELP = {
    "servers": "comma-separated designs, or 'all' (default: the registry's default ones)",
    "protocols": "echo and/or http (default: echo)",
    "cores": "server core counts, e.g. 1,2,4 (default: powers of two that fit)",
    "connections": "connection counts (default: 64)",
    "connections-per-core": "connections per server core, e.g. 400,600: a k-core trial opens "
    "c x k (instead of --connections)",
    "size": "echo message sizes in bytes (default: 64)",
    "duration": "measured seconds per trial (default: 4)",
    "warmup": "discarded seconds per trial (default: 1)",
    "repeat": "repetitions per configuration (default: 6, the fewest whose paired min..max "
    "covers 95%%: 96.9%%)",
    "timeout": "load-generator request timeout in seconds (default: 2)",
    "client-cpus": "load-generator CPUs (default: 4 per server core, capped by free CPUs)",
    "seed": "shuffle the design order in each group; also seeds arrivals and server work",
    "mode": "closed (default) or open loop",
    "rates": "open loop: offered requests per second, e.g. 10000,50000",
    "rate-sweep": "open loop: fractions of each configuration's measured capacity, e.g. 0.5,0.9",
    "arrival": "open loop: poisson (default) or uniform",
    "pipeline": "requests outstanding per connection (default: 1)",
    "work": "server CPU burn per request: none, fixed:US, exp:MEAN_US, bimodal:US1:US2:P2, "
    "lognormal:MEDIAN_US:SIGMA (comma-separated for several)",
    "hot-fraction": "skew: this fraction of connections carries --hot-share of the load",
    "hot-share": "skew: the share of requests (open) or pipeline depth (closed) they carry",
    "requests-per-connection": "churn: reconnect after this many requests (1: every request); "
    "comma-separated for several workloads, keep-alive for none (default: keep-alive)",
    "measure": "what to measure and rank on: auto (default: calibrate, then choose), fixed-rate "
    "(server CPU-us per request and latency at common rates), server-bound (closed loop with "
    "per-request work), closed-loop (peak throughput), as-given (exactly --mode/--rates; "
    "implied by them)",
    "server-host": "run the server on this SSH destination user@name[:port] (default: local)",
    "client-host": "run a load generator on this SSH destination (repeat, or comma-separated)",
    "remote-bin": "the load generator's path on the client hosts (when this one cannot run there)",
    "ssh-key": "SSH private key for the hosts (default: the agent and ~/.ssh keys)",
    "known-hosts": "known_hosts file for the hosts (default: ~/.ssh/known_hosts)",
}
RUN_HELP["rate-fractions"] = (
    "fixed-rate: the common rates, as fractions of the smallest closed-loop capacity among the "
    "designs (default: 0.5; e.g. 0.25,0.5 for two points of the latency curve)"
)
# Options only a plan file (a profile) gives: RunConfig field -> its check.
PLAN_FILE_ONLY = {"drop-unfit-cores": "drop_unfit_cores", "published": "published"}
# Flags that say the plan's mode and rates outright: they imply --measure as-given.
EXPLICIT_MODE_FLAGS = ("mode", "rates", "rate-sweep")


def saved_topology(path: Path) -> Topology:
    """--topology FILE: a saved topology (a run's manifest.json, or its platform.topology alone)
    to plan on instead of this machine's, for --dry-run."""
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "platform" in data:  # a manifest
            layout = (data.get("hosts") or {}).get("layout") or {}
            data = layout.get("server_topology") or data["platform"]["topology"]
        return from_description(data)
    except OSError as exc:
        raise HarnessError(f"cannot read --topology {path}: {exc.strerror}") from exc
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise HarnessError(
            f"--topology {path} is not a saved topology ({exc}); give a run's manifest.json or "
            'a JSON object like {"cores": [[0, 8], [1, 9]]}'
        ) from None


def machine_topology() -> Topology:
    root = Path(os.environ.get("HARNESS_SYSFS_CPU", SYSFS_CPU))
    topo = read_topology(root)
    return topo if "HARNESS_SYSFS_CPU" in os.environ else restrict(topo, os.sched_getaffinity(0))


def plan_file_options(args: argparse.Namespace) -> tuple[dict[str, Any], str | None]:
    """Options from --profile or --plan, as {flag: value}; and the source, for the manifest."""
    if args.profile and args.plan:
        raise HarnessError("--profile and --plan both name a plan; give one")
    path = args.plan
    if args.profile:
        path = PROFILES / f"{args.profile}.toml"
        if not path.is_file():
            names = ", ".join(sorted(p.stem for p in PROFILES.glob("*.toml")))
            raise HarnessError(f"unknown profile {args.profile!r}; profiles: {names}")
    if path is None:
        return {}, None
    try:
        text = path.read_text()
    except OSError as exc:
        raise HarnessError(f"cannot read --plan {path}: {exc.strerror}") from exc
    if path.suffix == ".json":  # a manifest: its resolved configuration, exactly
        try:
            config = json.loads(text)["plan"]["config"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise HarnessError(f"{path} is not a run manifest (no plan.config)") from None
        by_field = {f: flag for flag, (f, _, _) in RUN_OPTIONS.items()}
        # An empty list there is an option not used (no --rates in a sweep): its default.
        options = {by_field[k]: v for k, v in config.items() if k in by_field and v != []}
        options["oversubscribe"] = config.get("oversubscribe", False)
        # Exactly the resolved plan: a calibrated run's rates (group_rates) or work come back as
        # they were, so a second run (CI's candidate after its baseline) is offered the same load.
        options["measure"] = "as-given"
        options["calibrate"] = False
        options["group_rates"] = config.get("group_rates") or []
        for flag, field in PLAN_FILE_ONLY.items():
            if config.get(field) not in (None, False):
                options[flag] = config[field]
        return options, str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise HarnessError(f"{path} is not valid TOML: {exc}") from exc
    options = {k.replace("_", "-"): v for k, v in data.items()}
    if "client-hosts" in options:  # the plural reads better in a file
        options["client-host"] = options.pop("client-hosts")
    unknown = sorted(
        set(options)
        - set(RUN_OPTIONS)
        - {"oversubscribe", "calibrate", "group_rates"}
        - set(PLAN_FILE_ONLY)
    )
    if unknown:
        raise HarnessError(
            f"{path}: unknown option(s) {', '.join(unknown)}; known: {', '.join(RUN_OPTIONS)}"
        )
    return options, str(path)


def _group_rates(raw: list) -> tuple:
    """A manifest's group_rates (JSON lists) as the tuples RunConfig holds."""
    return tuple((tuple(g), tuple(float(r) for r in rates), tuple(s)) for g, rates, s in raw)


def run_config(
    args: argparse.Namespace, designs: dict[str, Design], topology: Topology
) -> tuple[RunConfig, str | None]:
    file_options, source = plan_file_options(args)
    values: dict[str, Any] = {}
    for flag, (field, parse, default) in RUN_OPTIONS.items():
        given = getattr(args, flag.replace("-", "_"))
        raw = given if given is not None else file_options.get(flag)
        values[field] = default if raw is None else parse(raw)
    if values["servers"] is None:
        values["servers"] = tuple(n for n, d in designs.items() if d.default)
    elif values["servers"] == ("all",):
        values["servers"] = tuple(designs)
    if values["cores"] is None:
        values["cores"] = tuple(cpu_planning.default_core_counts(topology))
    # A manifest always holds a mode; only flags and plan files say one outright.
    in_file = {} if source and source.endswith(".json") else file_options
    explicit = any(
        getattr(args, f.replace("-", "_")) is not None or f in in_file for f in EXPLICIT_MODE_FLAGS
    )
    if values["measure"] is None:
        values["measure"] = "as-given" if explicit else "auto"
    else:
        check_measure(values["measure"], explicit)
    no_calibrate = getattr(args, "no_calibrate", False)
    values["calibrate"] = not no_calibrate and bool(file_options.get("calibrate", True))
    values["group_rates"] = _group_rates(file_options.get("group_rates") or [])
    oversubscribe = (
        args.oversubscribe
        if args.oversubscribe is not None
        else bool(file_options.get("oversubscribe", False))
    )
    values["drop_unfit_cores"] = file_options.get("drop-unfit-cores") is True
    published = file_options.get("published")
    if published is not None and not (
        isinstance(published, str) and published.replace("-", "").isalnum()
    ):
        raise HarnessError(f'{source}: published must name a data set, e.g. "monoio-2021"')
    values["published"] = published
    return RunConfig(oversubscribe=oversubscribe, **values), source
