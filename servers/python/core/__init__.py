"""What the Python server designs share: the counterpart of `servers/core` (bench-core) for the
designs in this folder, module for module. A design file adds only how its worker processes get
a listening socket and what runs in them.

- `cli`: the command line of docs/server-contract.md (`Config`), bench-core's messages;
- `exits`: `error: ...` on stderr, exit 2 for a bad command line, exit 1 after it;
- `work`: `--work` (`Work`, `Rng`, `Burner`), drawn as bench-core draws it, burnt busy;
- `net`: listeners with the contract's options; `counters`: one worker's counters;
- `http_wire`: bench-core's HTTP responses and request-head parser (httparse's grammar);
- `session`: `EchoSession` / `HttpSession`, the sans-IO protocols (bench-core's `Session`);
- `connection`: the asyncio `BufferedProtocol` driving a session, and the asyncio worker;
- `runner`: the parent process (pinned forked workers, READY, signals, the counters line).
"""
