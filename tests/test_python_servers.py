"""The Python designs' shared code (servers/python/core/) without a network: the command
line, `--work` (bench-core's generator and formulas), and the HTTP session against bench-core's
responses. Their behaviour on sockets is tests/test_conformance.py's job."""

from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import BAD_SERVER_FLAGS

PYTHON_DIR = Path(__file__).resolve().parent.parent / "servers" / "python"
sys.path.insert(0, str(PYTHON_DIR))
from core import cli, exits, session, work  # noqa: E402

DATE = re.compile(rb"Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT")


def masked(response: bytes) -> bytes:
    return DATE.sub(b"Date: D", response)


def session_replies(*reads: bytes) -> list[tuple[bytes, int, bool]]:
    s = session.HttpSession()
    return [(masked(r), n, c) for r, n, c in (s.on_read(memoryview(b)) for b in reads)]


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\nServer: bench\r\n"
GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def test_the_200_response_is_bench_cores():
    assert session_replies(GET) == [(OK + b"Date: D\r\n\r\nHello, World!", 1, False)]


def test_pipelined_and_split_requests_are_answered_in_order():
    (r1, n1, c1), (r2, n2, c2) = session_replies(GET * 2 + GET[:10], GET[10:] + GET)
    assert (n1, n2, c1 or c2) == (2, 2, False)
    assert r1 == r2 == (OK + b"Date: D\r\n\r\nHello, World!") * 2


@pytest.mark.parametrize(
    ("request_", "ending", "body", "close"),
    [
        (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", b"Connection: close\r\n\r\n", True, True),
        (b"GET / HTTP/1.0\r\n\r\n", b"Connection: close\r\n\r\n", True, True),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", b"Connection: keep-alive\r\n\r\n",
         True, False),
        (b"HEAD / HTTP/1.1\r\n\r\n", b"\r\n", False, False),
        (b"GET / HTTP/1.1\nHost: x\n\n", b"\r\n", True, False),  # bare LF, as httparse
        (b"\r\nGET / HTTP/1.1\r\n\r\n", b"\r\n", True, False),  # an empty line first
    ],
)  # fmt: skip
def test_connection_handling(request_, ending, body, close):
    expected = OK + b"Date: D\r\n" + ending + (b"Hello, World!" if body else b"")
    assert session_replies(request_) == [(expected, 1, close)]


def test_other_methods_get_405_and_bodies_are_skipped():
    post = b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab"
    replies = session_replies(post, b"cde" + GET)
    assert replies[0] == (
        b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nAllow: GET, HEAD\r\n"
        b"Server: bench\r\nDate: D\r\n\r\n",
        1,
        False,
    )
    assert replies[1] == (OK + b"Date: D\r\n\r\nHello, World!", 1, False)


BAD = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nServer: bench\r\nDate: D\r\n"
    b"Connection: close\r\n\r\n"
)


@pytest.mark.parametrize(
    "request_",
    [
        b"GARBAGE\r\n\r\n",
        b"GARBAGE\r\n",  # refused as soon as the request line is complete
        b"GET / HTTP/2.0\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
        b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(65)) + b"\r\n",
        b"GET / HTTP/1.1\r\nX: " + b"a" * 8200 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: " + b"a" * 8200,  # no end of head within 8 KiB
    ],
)
def test_bad_requests_get_400_and_close(request_):
    assert session_replies(request_) == [(BAD, 1, True)]


def test_input_after_a_close_is_ignored():
    s = session.HttpSession()
    assert s.on_read(memoryview(b"GARBAGE\r\n\r\n" + GET))[1:] == (1, True)
    assert s.on_read(memoryview(GET)) == (b"", 0, True)


def test_rng_is_bench_cores_splitmix64():
    rng = work.Rng(0, 0)
    rng.state = 0  # the reference implementation's outputs from state 0 and 1234567 (work.rs)
    assert [rng.next_u64() for _ in range(3)] == [
        0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F,
    ]  # fmt: skip
    rng.state = 1234567
    assert [rng.next_u64() for _ in range(3)] == [
        6457827717110365317, 3203168211198807973, 9817491932198370423,
    ]  # fmt: skip
    assert work.Rng(1, 0).state != work.Rng(1, 1).state != work.Rng(2, 0).state


def test_work_draws():
    rng = work.Rng(1, 0)
    assert work.Work.parse("none").sample_ns(rng) == 0
    assert work.Work.parse("fixed:2.5").sample_ns(rng) == 2500
    assert {work.Work.parse("bimodal:1:2:0").sample_ns(rng) for _ in range(50)} == {1000}
    assert {work.Work.parse("bimodal:1:2:1").sample_ns(rng) for _ in range(50)} == {2000}
    exp = [work.Work.parse("exp:50").sample_ns(rng) for _ in range(20_000)]
    assert 48_000 < sum(exp) / len(exp) < 52_000
    logn = sorted(work.Work.parse("lognormal:50:1").sample_ns(rng) for _ in range(20_001))
    assert 47_000 < logn[10_000] < 53_000  # the median


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("x", "--work: expected none, fixed:US"),
        ("fixed", "--work: expected none"),
        ("fixed:1:2", "--work: expected none"),
        ("fixed:-1", "--work: '-1' in 'fixed:-1' is not a number >= 0"),
        ("fixed:1_0", "--work: '1_0' in 'fixed:1_0' is not a number >= 0"),
        ("exp:inf", "--work: 'inf' in 'exp:inf' is not a number >= 0"),
        ("fixed:2000000", "--work: 'fixed:2000000': durations are at most 1000000 us"),
        ("bimodal:1:2:1.5", "--work: 'bimodal:1:2:1.5': P2 is a probability, 0..1"),
    ],
)
def test_bad_work_is_bench_cores_error(text, error):
    with pytest.raises(exits.UsageError, match="^" + re.escape(error)):
        work.Work.parse(text)


def test_config_defaults_and_flags():
    cfg = cli.parse_config([])
    assert (cfg.protocol, cfg.host, cfg.port, cfg.threads, cfg.cpus) == (
        "echo", "127.0.0.1", 7878, 1, None,
    )  # fmt: skip
    assert (cfg.work, cfg.seed, cfg.burner(0)) == (work.Work(), 1, None)
    cfg = cli.parse_config(
        ["--protocol", "http", "--host", "::1", "--port", "9000", "--threads", "2",
         "--cpus", "0,0", "--work", "fixed:5", "--seed", "7"]
    )  # fmt: skip
    assert (cfg.protocol, cfg.host, cfg.port, cfg.threads, cfg.cpus) == ("http", "::1", 9000, 2,
                                                                          (0, 0))  # fmt: skip
    assert cfg.burner(1).rng.state == work.Rng(7, 1).state


DESIGNS = ["asyncio_tpc.py", "asyncio_shared.py", "aiohttp_app.py"]


@pytest.mark.parametrize(
    "args",
    [
        *BAD_SERVER_FLAGS,
        ["7878"],
        ["--port", "70000"],
        ["--threads", "-1"],
        ["--cpus", "1-0"],
        ["--cpus", ""],
        ["--work", "fixed:-1"],
        ["--seed", "-1"],
    ],
    ids=" ".join,
)
def test_bad_flags_are_one_line_errors(args):
    with pytest.raises(exits.UsageError) as err:
        cli.parse_config(args)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("design", DESIGNS)
def test_a_bad_flag_exits_2_with_one_line(design):
    proc = subprocess.run(
        [sys.executable, str(PYTHON_DIR / design), "--protocol", "http", "--bogus", "1"],
        capture_output=True, text=True, timeout=10,
    )  # fmt: skip
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        "error: unknown argument '--bogus' "
        "(flags: --protocol, --host, --port, --threads, --cpus, --work, --seed)\n"
    )


def test_aiohttp_speaks_only_http():
    proc = subprocess.run(
        [sys.executable, str(PYTHON_DIR / "aiohttp_app.py")], capture_output=True, text=True,
        timeout=10,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr == "error: --protocol: this design speaks only http\n"


@pytest.mark.parametrize("design", DESIGNS)
def test_port_in_use_is_an_error(design):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, str(PYTHON_DIR / design), "--protocol", "http", "--port", str(port)],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr.startswith("error: ") and "listen on 127.0.0.1:" in proc.stderr
    assert proc.stderr.count("\n") == 1


# Requests on which bench-core's HTTP (through epoll-tpc) and session.HttpSession must agree byte
# for byte, but for the Date value: edge cases of httparse's grammar, then seeded mutations.
EDGE_REQUESTS = [
    GET * 3,
    b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n" + GET,
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"HEAD / HTTP/1.1\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcde" + GET,
    b"GET / HTTP/1.1\nHost: x\n\n",
    b"\r\n\r\nGET / HTTP/1.1\r\n\r\n",
    b"GARBAGE\r\n",
    b"GET / HTTX",
    b"GET / HTTP/2.0\r\n\r\n",
    b"GET /\xc3\xa9 HTTP/1.1\r\n\r\n",
    b"GET /<a> HTTP/1.1\r\n\r\n",
    b"G:T / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    b"GET / HTTP/1.1\r\n X: v\r\n\r\n",
    b"GET / HTTP/1.1\r\nX: \xff\x7f\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length:  3 \r\n\r\nabc" + GET,
    b"GET / HTTP/1.1\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(64)) + b"\r\n",
    b"GET / HTTP/1.1\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(65)) + b"\r\n",
    b"GET / HTTP/1.1\r\nX: " + b"a" * 8150 + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\nX: " + b"a" * 8200 + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n\r/",
]


def mutated_requests(n: int, seed: int = 5) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        req = bytearray(b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
        for _ in range(rng.randint(1, 3)):
            req[rng.randrange(len(req))] = rng.choice(b" \t\r\n:\x00aZ/<\x7f\x80")
        out.append(bytes(req) + GET)
    return out


def answers(server, requests: list[bytes]) -> list[bytes]:
    """Each request on its own connection, then EOF from the client; all the server sent."""
    out = []
    for request in requests:
        with socket.create_connection((server.host, server.port), timeout=5) as s:
            s.sendall(request)
            s.shutdown(socket.SHUT_WR)
            data = b""
            try:
                while chunk := s.recv(65536):
                    data += chunk
            except ConnectionResetError:
                data += b"<reset>"
        out.append(masked(data))
    return out


def test_http_answers_are_bench_cores():
    from harness.checks import conformance
    from harness.plan.designs import DEFAULT_BIN_DIR, load_registry

    bin_dir = Path(os.environ.get("BENCH_BIN_DIR", DEFAULT_BIN_DIR))
    registry = load_registry()
    requests = EDGE_REQUESTS + mutated_requests(60)
    got = {}
    for name in ("epoll-tpc", "py-asyncio-tpc"):
        try:
            with conformance.start_server(registry[name], "http", 1, [0], bin_dir) as server:
                got[name] = answers(server, requests)
        except conformance.ServerStartError as exc:
            pytest.skip(f"{name}: {exc.reason}")
    differ = [
        (req, rust, py)
        for req, rust, py in zip(requests, got["epoll-tpc"], got["py-asyncio-tpc"], strict=True)
        if rust != py
    ]
    assert not differ, f"{len(differ)} answers differ, first: {differ[0]}"
