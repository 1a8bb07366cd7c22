"""py-asyncio-tpc: thread-per-core in Python. One forked uvloop process per core; each pins
itself and binds its own SO_REUSEPORT listener, so the kernel spreads new connections over the
workers and nothing is shared after the fork (a connection lives and dies on one core).

What differs from py-asyncio-shared: only where the listening socket comes from (here: one per
worker, created in the worker; there: one, created by the parent before the fork)."""

from __future__ import annotations

from core.cli import Config, config_from_argv
from core.connection import serve_asyncio
from core.net import listen
from core.runner import WorkerLink, run_workers

DESIGN = "py-asyncio-tpc"


def worker(cfg: Config, index: int, link: WorkerLink):
    try:
        sock = listen(cfg.host, cfg.port, reuseport=True)
    except OSError as exc:
        link.fail(exc.strerror or str(exc))
    serve_asyncio(cfg, index, sock, link)


def main() -> None:
    cfg = config_from_argv()
    run_workers(DESIGN, cfg, lambda index, link: worker(cfg, index, link))


if __name__ == "__main__":
    main()
