#!/usr/bin/env python3
"""Local object-store servers for the remote tests and benchmarks, each in a child process.

    python scripts/object_store_servers.py s3 [--port N]          # a moto S3 server
    python scripts/object_store_servers.py http DIR [--port N]    # DIR over HTTP, with Range
    python scripts/object_store_servers.py http DIR --no-ranges   # ... without (http.server's)

Both serve on 127.0.0.1 (port 0, the default, picks a free one), print ``PORT <n>`` on stdout
once listening and run until interrupted or until their stdin closes (so a child started by
`start_s3_server` / `start_http_server` never outlives its parent).

- S3: `moto.server.ThreadedMotoServer` (moto[server]). moto accepts any signed credentials and
  needs path-style addressing, which every client given an ``endpoint_url`` uses here.
- HTTP: `http.server` with what a zarr reader over HTTP needs and the standard handler lacks:
  single byte ranges (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``) answered with 206 and
  ``Content-Range``, 416 for an unsatisfiable range, 404 for folders and missing files (an
  object store has keys, not folders), keep-alive connections, and HEAD.

The servers run in child processes because a server thread in the client's process starves while
that process holds the GIL during network I/O. `tests/object_store_servers.py` (pytest fixtures)
and `benches/bench_s3.py` drive this module; it needs the standard library only, plus moto for s3.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import email.utils
import http.server
import logging
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

SCRIPT = Path(__file__).resolve()
START_TIMEOUT = 60.0  # seconds until a child must answer requests
STOP_TIMEOUT = 10.0


class ServerError(RuntimeError):
    """A server child did not start (its output is in the message)."""


@dataclasses.dataclass
class ServerProcess:
    """A running server child: where it answers and the process to stop (by its pid)."""

    kind: str  # "s3" or "http"
    url: str  # "http://127.0.0.1:PORT"
    port: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]  # the child's stderr

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """Terminate the child (SIGTERM, then SIGKILL after STOP_TIMEOUT seconds)."""
        process = self.process
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT)
        for stream in (process.stdin, process.stdout, self.log):
            if stream is not None:
                stream.close()


# ---------------------------------------------------------------- starting children


def _start(
    kind: str, args: list[str], ready_path: str, env: dict[str, str] | None = None
) -> ServerProcess:
    """Start ``SCRIPT kind *args`` (with ``env`` added to this process's environment) and wait
    until it prints its port and ``ready_path`` answers an HTTP request (any status)."""
    # Unbuffered pipes (select sees all there is to read); stderr goes to a file, not a pipe: a
    # pipe nobody reads would block a chatty child.
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), kind, *args], bufsize=0, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=log, env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + START_TIMEOUT
    try:
        port = _read_port(process, log, deadline)
        server = ServerProcess(kind, f"http://127.0.0.1:{port}", port, process, log)
        _wait_until_answering(server.url + ready_path, process, log, deadline)
    except BaseException:
        process.kill()
        process.wait()
        log.close()
        raise
    return server


def _read_port(process: subprocess.Popen[bytes], log: IO[bytes], deadline: float) -> int:
    assert process.stdout is not None
    line = b""
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or process.poll() is not None:
            raise ServerError(f"server child did not start: {_child_output(process, log)}")
        ready, _, _ = select.select([process.stdout], [], [], min(remaining, 0.5))
        if ready:
            byte = process.stdout.read(1)
            if not byte:
                raise ServerError(f"server child exited: {_child_output(process, log)}")
            line += byte
    if not line.startswith(b"PORT "):
        raise ServerError(f"unexpected first line {line!r} of the server child")
    return int(line.split()[1])


def _wait_until_answering(
    url: str, process: subprocess.Popen[bytes], log: IO[bytes], deadline: float
) -> None:
    last: Exception | None = None
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"server child exited: {_child_output(process, log)}")
        try:
            with opener.open(url, timeout=2):
                return
        except urllib.error.HTTPError:  # answered, with an error status: it is up
            return
        except OSError as exc:
            last = exc
            time.sleep(0.05)
    raise ServerError(f"{url} did not answer within {START_TIMEOUT} s: {last}")


def _child_output(process: subprocess.Popen[bytes], log: IO[bytes]) -> str:
    if process.poll() is None:
        process.kill()
    process.wait(STOP_TIMEOUT)
    log.seek(0)
    err = log.read().decode(errors="replace")[-2000:]
    return f"exit code {process.returncode}; stderr: {err}"


def start_s3_server(*, authenticate_after: int | None = None) -> ServerProcess:
    """A moto S3 server child on a free port of 127.0.0.1.

    Args:
        authenticate_after: None: any credentials are accepted (moto's default). A number n:
            after n requests moto checks every request against its own IAM users and policies
            (moto's ``INITIAL_NO_AUTH_ACTION_COUNT``), so unknown keys and wrong secrets are
            denied; use the first n requests to create a user, its access key and its policy.
    """
    env = None if authenticate_after is None else {  # + 1: the probe that waits for the server
        "INITIAL_NO_AUTH_ACTION_COUNT": str(authenticate_after + 1)}
    return _start("s3", [], "/", env)


def start_http_server(directory: str | os.PathLike[str], *, ranges: bool = True) -> ServerProcess:
    """A child serving ``directory`` over HTTP on a free port, with Range support unless
    ``ranges`` is False (then, like plain ``http.server``, every GET answers the whole file)."""
    return _start("http", [os.fspath(directory), *([] if ranges else ["--no-ranges"])], "/")


@contextlib.contextmanager
def s3_server(*, authenticate_after: int | None = None) -> Iterator[ServerProcess]:
    """`start_s3_server`, stopped on exit."""
    server = start_s3_server(authenticate_after=authenticate_after)
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def http_server(directory: str | os.PathLike[str], *, ranges: bool = True
                ) -> Iterator[ServerProcess]:
    """`start_http_server`, stopped on exit."""
    server = start_http_server(directory, ranges=ranges)
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------- the HTTP server (child side)


class RangeRequestHandler(http.server.SimpleHTTPRequestHandler):
    """Files under ``directory`` by GET and HEAD, with single byte ranges; folders are 404."""

    protocol_version = "HTTP/1.1"  # keep-alive: a reader makes many small requests
    ranges = True  # False: ignore Range headers (answer 200 and the whole file)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # quiet: thousands of chunk requests per test

    def send_head(self):  # type: ignore[no-untyped-def]  (returns a file object or None)
        path = self.translate_path(self.path)
        if self.path.split("?", 1)[0].endswith("/") or not os.path.isfile(path):
            self.send_error(404, "File not found")
            return None
        try:
            f = open(path, "rb")  # noqa: SIM115  (closed by the caller, as in the base class)
        except OSError:
            self.send_error(404, "File not found")
            return None
        try:
            stat = os.fstat(f.fileno())
            size = stat.st_size
            start, stop = 0, size  # [start, stop)
            status = 200
            header = self.headers.get("Range") if self.ranges else None
            if header is not None:
                parsed = _parse_range(header, size)
                if parsed == "unsatisfiable":
                    f.close()
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if parsed is not None:
                    start, stop = parsed
                    status = 206
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Accept-Ranges", "bytes" if self.ranges else "none")
            self.send_header("Content-Length", str(stop - start))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
            self.send_header("Last-Modified", email.utils.formatdate(stat.st_mtime, usegmt=True))
            self.send_header("ETag", f'"{stat.st_mtime_ns:x}-{size:x}"')
            self.end_headers()
            f.seek(start)
            self._remaining = stop - start
            return f
        except BaseException:
            f.close()
            raise

    def copyfile(self, source, outputfile):  # type: ignore[no-untyped-def]
        remaining = getattr(self, "_remaining", None)
        while remaining:
            block = source.read(min(remaining, 1 << 20))
            if not block:
                break
            outputfile.write(block)
            remaining -= len(block)


def _parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """``(start, stop)`` of a single ``bytes=`` range, ``"unsatisfiable"``, or None to ignore it
    (malformed, another unit, or several ranges: a server may then answer the whole file)."""
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first == "":  # suffix: the last n bytes
            n = int(last)
            if n <= 0 or size == 0:
                return "unsatisfiable"
            return max(0, size - n), size
        start = int(first)
        stop = size if last == "" else min(int(last) + 1, size)
    except ValueError:
        return None
    if start < 0 or (last != "" and int(last) < start):
        return None
    if start >= size:
        return "unsatisfiable"
    return start, stop


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def serve_http(directory: str, port: int, *, ranges: bool = True) -> None:
    directory = os.path.abspath(directory)
    handler_class = type("Handler", (RangeRequestHandler,), {"ranges": ranges})

    def handler(*args: object, **kwargs: object) -> RangeRequestHandler:
        return handler_class(*args, directory=directory, **kwargs)  # type: ignore[arg-type]

    server = _Server(("127.0.0.1", port), handler)  # type: ignore[arg-type]
    _announce(server.server_address[1])
    server.serve_forever()


def serve_s3(port: int) -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server.start()
    _announce(server.get_host_and_port()[1])
    threading.Event().wait()


def _announce(port: int) -> None:
    """Print the port, then exit when stdin closes (the parent died or stopped us)."""
    print(f"PORT {port}", flush=True)

    def watch_stdin() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            os._exit(0)

    if not sys.stdin.isatty():
        threading.Thread(target=watch_stdin, daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    s3 = sub.add_parser("s3", help="a moto S3 server")
    s3.add_argument("--port", type=int, default=0)
    web = sub.add_parser("http", help="a folder over HTTP, with Range support")
    web.add_argument("directory")
    web.add_argument("--port", type=int, default=0)
    web.add_argument("--no-ranges", action="store_true",
                     help="ignore Range headers, as plain http.server does")
    args = parser.parse_args(argv)
    try:
        if args.kind == "s3":
            serve_s3(args.port)
        else:
            serve_http(args.directory, args.port, ranges=not args.no_ranges)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
