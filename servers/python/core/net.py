"""Listeners with the contract's options (bench-core's net.rs): SO_REUSEADDR, optional
SO_REUSEPORT, backlog 1024, nonblocking."""

from __future__ import annotations

import socket

BUF_SIZE = 16 * 1024  # bench_core::BUF_SIZE: every read is into a buffer of this size
BACKLOG = 1024  # bench_core::BACKLOG


def listen(host: str, port: int, *, reuseport: bool) -> socket.socket:
    """A nonblocking listener with the contract's options; OSError says 'listen on ADDR: ...'."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        addr = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        raise OSError(exc.errno, f"listen on {addr}: {exc.strerror}") from None
    return sock
