"""A server that answers with answers recorded beforehand, and does nothing else.

`bench/tracking.py` replays Mill's get-history pages and a search answer through this, and
sends it log-batch and log-metric calls, so the mlflow client's own cost (HTTP, JSON,
protobuf, entity objects) is measured with a server that costs nothing: the floor no
tracking server can go below.

Run: python bench/canned_server.py ANSWERS.json PORT_FILE
ANSWERS.json: {"GET": {page token ("" for the first page): body},
               "POST": {path: body}}; any other POST is answered ``{}``.
"""

from __future__ import annotations

import json
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


def main() -> None:
    recorded = json.loads(Path(sys.argv[1]).read_text())
    pages = {k: v.encode() for k, v in recorded.get("GET", {}).items()}
    posts = {k: v.encode() for k, v in recorded.get("POST", {}).items()}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real server

        def setup(self) -> None:
            super().setup()
            # Headers and body go out as two writes: without this, Nagle's algorithm holds
            # the body for the client's delayed ACK (40 ms a call).
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            body = pages.get(query.get("page_token", [""])[0])
            if body is None:
                self.answer(404, b'{"error_code": "RESOURCE_DOES_NOT_EXIST"}')
            else:
                self.answer(200, body)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.answer(200, posts.get(urlsplit(self.path).path, b"{}"))

        def answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Path(sys.argv[2]).write_text(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
