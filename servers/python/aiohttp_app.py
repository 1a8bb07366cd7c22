"""py-aiohttp: a real aiohttp web application (aiohttp.web), deployed one pinned worker process
per core, each with its own SO_REUSEPORT listener served by `AppRunner` + `SockSite` on uvloop
(what `gunicorn -k aiohttp.GunicornUVLoopWebWorker --reuse-port` gives). HTTP only.

Unlike the asyncio designs it parses with aiohttp's own HTTP parser (llhttp, in C), builds a
Request and a Response object per request and goes through its router, so its responses carry
aiohttp's headers (`Server: Python/3.x aiohttp/3.x`, `Date`, `Content-Type: text/plain`), checked
by harness.conformance for meaning rather than byte for byte.

Counters: `connections` by wrapping the server's `connection_made` (called once per accepted
connection), `messages` by the `on_response_prepare` signal (every response aiohttp prepares for
this app). aiohttp exposes no cheap per-socket byte counts, so `bytes_in` and `bytes_out` are
reported as null (absent), never as a fake 0. `--work` burns in the handler, once per request."""

from __future__ import annotations

import asyncio

import uvloop
from aiohttp import web
from core.cli import Config, config_from_argv
from core.counters import Counters
from core.net import BACKLOG, listen
from core.runner import WorkerLink, run_workers

DESIGN = "py-aiohttp"
BODY = b"Hello, World!"


def worker(cfg: Config, index: int, link: WorkerLink):
    try:
        sock = listen(cfg.host, cfg.port, reuseport=True)
    except OSError as exc:
        link.fail(exc.strerror or str(exc))
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    counters = Counters(bytes_measured=False)
    burner = cfg.burner(index)

    async def hello(request: web.Request) -> web.Response:
        if burner is not None:
            burner()
        return web.Response(body=BODY, content_type="text/plain")

    async def count_response(request: web.Request, response: web.StreamResponse) -> None:
        counters.messages += 1

    app = web.Application()
    app.router.add_get("/{tail:.*}", hello)
    app.on_response_prepare.append(count_response)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    loop.run_until_complete(runner.setup())
    server = runner.server
    connection_made = server.connection_made

    def count_connection(handler, transport) -> None:
        counters.connections += 1
        connection_made(handler, transport)

    server.connection_made = count_connection
    site = web.SockSite(runner, sock, backlog=BACKLOG)
    loop.run_until_complete(site.start())
    link.serve_until_stopped(loop, counters)


def main() -> None:
    cfg = config_from_argv(protocols=("http",))
    run_workers(DESIGN, cfg, lambda index, link: worker(cfg, index, link))


if __name__ == "__main__":
    main()
