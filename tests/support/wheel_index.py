"""A package index on loopback serving a folder of wheels, as PyPI does (PEP 503 pages,
files sent with a long Cache-Control), so that pip itself fills its HTTP cache the way
it does on a researcher's machine — this machine's own mirror sends no cache headers."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename


class WheelIndex:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        wheels = sorted(self.folder.glob("*.whl"))
        self.projects: dict[str, list[Path]] = {}
        for wheel in wheels:
            name = canonicalize_name(parse_wheel_filename(wheel.name)[0])
            self.projects.setdefault(name, []).append(wheel)
        index = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):   # keep the test output clean
                pass

            def do_GET(self):
                parts = [p for p in self.path.split("/") if p]
                if len(parts) == 2 and parts[0] == "simple" and parts[1] in index.projects:
                    links = "".join(
                        f'<a href="/files/{w.name}#sha256='
                        f'{hashlib.sha256(w.read_bytes()).hexdigest()}">{w.name}</a>\n'
                        for w in index.projects[parts[1]])
                    self._send(f"<html><body>{links}</body></html>".encode(), "text/html",
                               "max-age=0")
                elif len(parts) == 2 and parts[0] == "files" and \
                        (index.folder / parts[1]).is_file() and "/" not in parts[1]:
                    self._send((index.folder / parts[1]).read_bytes(),
                               "application/octet-stream", "max-age=365000000, immutable")
                else:
                    self.send_error(404)

            def _send(self, body: bytes, kind: str, cache: str):
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", cache)
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/simple/"

    def __enter__(self) -> "WheelIndex":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
