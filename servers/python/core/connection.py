"""The asyncio driver: a `BufferedProtocol` that drives a session from a 16 KiB buffer, and the
worker of the asyncio designs (one uvloop event loop serving one listener)."""

from __future__ import annotations

import asyncio
import socket
from typing import NoReturn

from core.cli import Config
from core.counters import Counters
from core.net import BACKLOG, BUF_SIZE
from core.runner import WorkerLink
from core.session import EchoSession, HttpSession


class Connection(asyncio.BufferedProtocol):
    """Drives a session as bench-core's designs do: read into a BUF_SIZE buffer, hand the bytes
    to the session, write its reply, close if it says so. The transport's high-water mark is 0,
    so any reply the kernel does not take at once pauses reading until it is written (the
    contract's "writes back what it read before it reads again"): no unbounded buffering."""

    __slots__ = ("buf", "counters", "session", "transport")

    def __init__(self, session: EchoSession | HttpSession, counters: Counters) -> None:
        self.session = session
        self.counters = counters
        self.buf = memoryview(bytearray(BUF_SIZE))
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport  # uvloop's TCPTransport (not an asyncio.Transport subclass)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=0, low=0)
        self.counters.connections += 1

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buf

    def buffer_updated(self, nbytes: int) -> None:
        reply, messages, close = self.session.on_read(self.buf[:nbytes])
        c = self.counters
        c.bytes_in += nbytes
        c.messages += messages
        transport = self.transport
        if reply:
            transport.write(reply)
            c.bytes_out += len(reply)
        if close:
            transport.close()  # after the reply is written

    def eof_received(self) -> bool:
        return False  # nothing is ever left unanswered: the transport closes once written

    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        if not self.transport.is_closing():
            self.transport.resume_reading()


def serve_asyncio(cfg: Config, worker: int, sock: socket.socket, link: WorkerLink) -> NoReturn:
    """A worker process of the asyncio designs: one uvloop event loop serving `sock`."""
    import uvloop  # imported here so that a parent that fails early never pays for it

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    counters = Counters()
    burner = cfg.burner(worker)
    if cfg.protocol == "http":

        def factory() -> Connection:
            return Connection(HttpSession(burner), counters)
    else:

        def factory() -> Connection:
            return Connection(EchoSession(burner), counters)

    loop.run_until_complete(loop.create_server(factory, sock=sock, backlog=BACKLOG))
    link.serve_until_stopped(loop, counters)
