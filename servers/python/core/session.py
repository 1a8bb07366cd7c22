"""The sans-IO protocols, the same state machines as bench-core's `Session` (session.rs): bytes
in, bytes to write back, messages answered, close or not."""

from __future__ import annotations

from core.http_wire import BAD, CLOSE, PARTIAL, RESPONSES, HttpResponses, parse_head
from core.work import Burner


class EchoSession:
    """Every byte read goes back: one message per non-empty read."""

    __slots__ = ("burner",)

    def __init__(self, burner: Burner | None = None) -> None:
        self.burner = burner

    def on_read(self, data: memoryview) -> tuple[bytes, int, bool]:
        if self.burner is not None:
            self.burner()
        # A copy: the transport may keep what it could not write yet, and the read buffer is
        # reused (bench-core's designs write straight from their read buffer).
        return bytes(data), 1, False


class HttpSession:
    """HTTP/1.1 as bench-core speaks it (http.rs): GET -> `200 Hello, World!`, HEAD -> the same
    head, any other method -> 405; keep-alive unless `Connection: close` (HTTP/1.0: unless
    `Connection: keep-alive`); pipelined requests answered in order, all the answers to one
    read in one write; request bodies (Content-Length) skipped; a malformed request, more than
    64 headers, a head over 8 KiB or Transfer-Encoding -> 400 and close."""

    __slots__ = ("body_left", "burner", "closed", "partial", "responses")

    def __init__(self, burner: Burner | None = None, responses: HttpResponses = RESPONSES):
        self.burner = burner
        self.responses = responses
        self.partial = b""  # an incomplete request head from earlier reads
        self.body_left = 0  # body bytes of an answered request still to skip
        self.closed = False

    def on_read(self, data: memoryview) -> tuple[bytes, int, bool]:
        if self.closed or not data:
            return b"", 0, self.closed
        skip = min(self.body_left, len(data))
        self.body_left -= skip
        buf = self.partial + data[skip:] if self.partial else bytes(data[skip:])
        self.partial = b""
        table = self.responses.now().table
        out: list[bytes] = []
        pos = 0
        while pos < len(buf):
            head = parse_head(buf, pos)
            if head is PARTIAL:
                self.partial = buf[pos:]
                break
            if head is BAD:
                out.append(self.responses.bad)
                self.closed = True
                break
            length, method, persist, body = head
            if self.burner is not None:
                self.burner()
            out.append(table[method, persist])
            if persist == CLOSE:
                self.closed = True
                break
            pos += length
            skip = min(body, len(buf) - pos)
            pos += skip
            self.body_left = body - skip
        return b"".join(out), len(out), self.closed
