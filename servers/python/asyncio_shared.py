"""py-asyncio-shared: the pre-fork model of gunicorn (and of nginx without `reuseport`). The
parent creates ONE listening socket and forks one uvloop process per core; every worker pins
itself and accepts from the same socket. The kernel wakes the workers waiting on it (libuv does
not ask for EPOLLEXCLUSIVE), and whichever accepts first gets the connection, so the balance
between workers depends on who is idle, not on a hash as with SO_REUSEPORT.

What differs from py-asyncio-tpc: only where the listening socket comes from."""

from __future__ import annotations

from core.cli import config_from_argv
from core.connection import serve_asyncio
from core.exits import fatal
from core.net import listen
from core.runner import run_workers

DESIGN = "py-asyncio-shared"


def main() -> None:
    cfg = config_from_argv()
    try:
        sock = listen(cfg.host, cfg.port, reuseport=False)
    except OSError as exc:
        fatal(exc.strerror or str(exc))
    # Workers inherit the socket; the parent closes its copy once they are forked.
    run_workers(
        DESIGN,
        cfg,
        lambda index, link: serve_asyncio(cfg, index, sock, link),
        after_fork=sock.close,
    )


if __name__ == "__main__":
    main()
