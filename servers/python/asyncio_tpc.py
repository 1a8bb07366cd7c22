"""py-asyncio-tpc: thread-per-core in Python. One forked uvloop process per core; each pins
itself and binds its own SO_REUSEPORT listener, so the kernel spreads new connections over the
workers and nothing is shared after the fork (a connection lives and dies on one core).

What differs from py-asyncio-shared: only where the listening socket comes from (here: one per
worker, created in the worker; there: one, created by the parent before the fork)."""

from __future__ import annotations

import common

DESIGN = "py-asyncio-tpc"


def worker(cfg: common.Config, index: int, link: common.WorkerLink):
    try:
        sock = common.listen(cfg.host, cfg.port, reuseport=True)
    except OSError as exc:
        link.fail(exc.strerror or str(exc))
    common.serve_asyncio(cfg, index, sock, link)


def main() -> None:
    cfg = common.config_from_argv()
    common.run_workers(DESIGN, cfg, lambda index, link: worker(cfg, index, link))


if __name__ == "__main__":
    main()
