"""A folder served over http on the loopback interface, for data kept by reference
(fetch.txt URLs are http(s) only)."""

from __future__ import annotations

import contextlib
import http.server
import threading
from functools import partial
from pathlib import Path
from typing import Iterator


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):   # a client that hung up early
        pass


@contextlib.contextmanager
def served_folder(root: Path) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 while the block runs; yield its base URL."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
