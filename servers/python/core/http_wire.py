"""HTTP/1.1 on the wire as bench-core writes and reads it (http.rs): its responses byte for byte,
and `parse_head`, httparse's grammar and limits for a request head."""

from __future__ import annotations

import re
import time
from email.utils import formatdate

MAX_HEAD_BYTES = 8 * 1024  # bench-core's http::MAX_HEAD: a longer request head gets a 400
SERVER_NAME = "bench"  # the Server header of the contract's HTTP response (as bench-core's)
_M64 = (1 << 64) - 1

# What a response says about the connection (bench-core's http::Persist).
KEEP_ALIVE, KEEP_ALIVE_10, CLOSE = 0, 1, 2
GET, HEAD, OTHER = 0, 1, 2


class HttpResponses:
    """bench-core's responses (http.rs), byte for byte: status line, Content-Length,
    Content-Type, Server, Date, then Connection when it is not the default. The Date value is
    reformatted when the second changes, checked once per read (`now`)."""

    __slots__ = ("bad", "second", "table")

    def __init__(self) -> None:
        self.second = -1
        self.now()

    def now(self) -> HttpResponses:
        second = int(time.time())
        if second != self.second:
            self.second = second
            self._build(formatdate(second, usegmt=True).encode())  # IMF-fixdate
        return self

    def _build(self, date: bytes) -> None:
        ok = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n"
        not_allowed = (
            b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nAllow: GET, HEAD\r\n"
        )
        tail = b"Server: " + SERVER_NAME.encode() + b"\r\nDate: " + date
        ends = {
            KEEP_ALIVE: b"\r\n\r\n",
            KEEP_ALIVE_10: b"\r\nConnection: keep-alive\r\n\r\n",
            CLOSE: b"\r\nConnection: close\r\n\r\n",
        }
        self.table = {
            (method, persist): start + tail + end + body
            for persist, end in ends.items()
            for method, start, body in (
                (GET, ok, BODY),
                (HEAD, ok, b""),
                (OTHER, not_allowed, b""),
            )
        }
        self.bad = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n" + tail + ends[CLOSE]


BODY = b"Hello, World!"
MAX_HEADERS = 64  # bench-core's http::MAX_HEADERS (httparse's header array)
RESPONSES = HttpResponses()  # one per process, so one per worker
# The byte classes of httparse 1.10, which bench-core uses: a method is an RFC 9110 token, a
# target any visible ASCII or byte >= 0x80, a header name a token, a value HTAB, visible ASCII,
# space or obs-text.
_METHOD_CHARS = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_TARGET_CHARS = rb"[\x21-\x7e\x80-\xff]"
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REQUEST_LINE = re.compile(rb"(" + _METHOD_CHARS + rb"+) " + _TARGET_CHARS + rb"+ HTTP/1\.([01])")
# A request line not complete yet, but still possibly valid (httparse refuses early).
_REQUEST_PREFIX = re.compile(
    _METHOD_CHARS
    + rb"*|"
    + _METHOD_CHARS
    + rb"+ "
    + _TARGET_CHARS
    + rb"*|"
    + _METHOD_CHARS
    + rb"+ "
    + _TARGET_CHARS
    + rb"+ (H|HT|HTT|HTTP|HTTP/|HTTP/1|HTTP/1\.)?"
    + rb"|"
    + _METHOD_CHARS
    + rb"+ "
    + _TARGET_CHARS
    + rb"+ HTTP/1\.[01]\r?"
)
_FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
_LONE_CR = re.compile(rb"\r[^\n]")
PARTIAL, BAD = "partial", "bad"


def _head_end(buf: bytes, pos: int) -> int:
    """End of the request head starting at pos (just past its blank line), or -1. Lines end
    with CRLF or, as httparse accepts, a bare LF."""
    crlf = buf.find(b"\n\r\n", pos)
    lf = buf.find(b"\n\n", pos)
    if crlf < 0:
        return -1 if lf < 0 else lf + 2
    return crlf + 3 if lf < 0 or crlf < lf else lf + 2


def _lines(head: bytes) -> list[bytes]:
    return [ln[:-1] if ln.endswith(b"\r") else ln for ln in head.split(b"\n")]


def _bad_lines(lines: list[bytes]) -> bool:
    """True if a complete request line or header line is malformed (as httparse rejects it)."""
    if lines and not _REQUEST_LINE.fullmatch(lines[0]):
        return True
    for line in lines[1:]:
        colon = line.find(b":")
        if colon <= 0 or not _TOKEN.fullmatch(line, 0, colon):
            return True  # no name, whitespace before the colon, obs-fold
        if not _FIELD_VALUE.fullmatch(line, colon + 1):
            return True  # a control character (a bare CR, NUL, ...)
    return False


def _content_length(value: bytes) -> int | None:
    digits = value.strip(b" \t")
    if not digits.isdigit() or int(digits) > _M64:
        return None
    return int(digits)


def parse_head(buf: bytes, pos: int) -> tuple[int, int, int, int] | str:
    """The request head at buf[pos:], as bench-core's http::parse: (length, method, persist,
    body length), or PARTIAL (a valid prefix shorter than MAX_HEAD) or BAD."""
    start = pos
    while buf.startswith(b"\r\n", pos) or buf.startswith(b"\n", pos):  # empty lines first
        pos += 2 if buf[pos] == 13 else 1
    end = _head_end(buf, pos)
    if end < 0:
        if len(buf) - start >= MAX_HEAD_BYTES:
            return BAD
        lines = _lines(buf[pos:])
        if len(lines) == 1:
            return PARTIAL if _REQUEST_PREFIX.fullmatch(lines[0]) else BAD
        if _LONE_CR.search(buf, pos) or _bad_lines(lines[:-1]):  # the last may be incomplete
            return BAD
        return PARTIAL
    if end - start > MAX_HEAD_BYTES:
        return BAD
    lines = _lines(buf[pos:end])[:-2]  # the blank line
    if len(lines) - 1 > MAX_HEADERS or _bad_lines(lines):
        return BAD
    close = keep_alive = False
    body = None
    for line in lines[1:]:
        colon = line.find(b":")
        name = line[:colon].lower()
        if name == b"connection":
            for option in line[colon + 1 :].split(b","):
                option = option.strip(b" \t").lower()
                close |= option == b"close"
                keep_alive |= option == b"keep-alive"
        elif name == b"content-length":
            n = _content_length(line[colon + 1 :])
            if n is None or (body is not None and n != body):
                return BAD
            body = n
        elif name == b"transfer-encoding":
            return BAD  # chunked bodies are not supported
    m = _REQUEST_LINE.match(lines[0])
    method = {b"GET": GET, b"HEAD": HEAD}.get(m[1], OTHER)
    http10 = m[2] == b"0"
    if close or (http10 and not keep_alive):
        persist = CLOSE
    else:
        persist = KEEP_ALIVE_10 if http10 else KEEP_ALIVE
    return end - start, method, persist, body or 0
