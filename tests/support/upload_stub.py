"""A local HTTP server standing in for S3 behind a presigned PUT URL, for the on-premises worker tests."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

SIGNED_QUERY = "X-Amz-Signature=do-not-leak-me"


@dataclass(frozen=True)
class ReceivedUpload:
    path: str
    headers: dict[str, str]
    body: bytes


class UploadStub:
    """Receives PUTs and answers ``status``; with ``read_delay`` it reads the body slowly, so an
    upload takes long enough to be cancelled midway. ``started`` is set once a PUT's headers are in."""

    def __init__(self, status: int = 200, read_delay: float = 0.0, read_block: int = 64 * 1024) -> None:
        self.status = status
        self.read_delay = read_delay
        self.read_block = read_block
        self.uploads: list[ReceivedUpload] = []
        self.started = threading.Event()
        self.aborted = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                stub.started.set()
                remaining = int(self.headers.get("Content-Length", "0"))
                body = bytearray()
                while remaining > 0:
                    try:
                        block = self.rfile.read(min(stub.read_block, remaining))
                    except OSError:
                        block = b""
                    if not block:  # the client gave up midway
                        stub.aborted.set()
                        return
                    body += block
                    remaining -= len(block)
                    time.sleep(stub.read_delay)
                stub.uploads.append(ReceivedUpload(self.path, dict(self.headers.items()), bytes(body)))
                answer = b"" if stub.status < 300 else b"<Error><Code>AccessDenied</Code></Error>"
                self.send_response(stub.status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, key: str = "exports/readings.csv") -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/bucket/{key}?{SIGNED_QUERY}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
