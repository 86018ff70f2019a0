"""One datastore transfer in a process of its own: ``python -m mill.storage.transfer_child``.

The control plane hands large same-host transfers to this child so that their buffers
(fsspec, the storage SDKs, the allocator's high-water mark) never stay in the long-lived
server. The request comes on stdin as JSON (credentials included: never argv, never the
environment, never a file); progress and the outcome go to stdout as JSON lines:
``{"bytes": n}`` ..., then ``{"done": {...}}`` or ``{"error": <envelope>}``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from mill.errors import MillError
from mill.storage.filesystems import DatastoreFS

__all__ = ["main"]

_PROGRESS_SECONDS = 0.25


def main() -> int:
    request: dict[str, Any] = json.loads(sys.stdin.read())
    fs = DatastoreFS(request["name"], request["type"], request["config"], request["credentials"])
    lock = threading.Lock()
    pending = [0, time.monotonic()]

    def progress(n: int) -> None:
        with lock:
            pending[0] += n
            if time.monotonic() - pending[1] >= _PROGRESS_SECONDS:
                _say({"bytes": pending[0]})
                pending[0], pending[1] = 0, time.monotonic()

    try:
        local = Path(request["local_path"])
        if request["direction"] == "upload":
            stats = fs.put(local, request["relative"], progress)
        else:
            stats = fs.get(request["relative"], local, progress)
    except MillError as exc:
        _say({"error": exc.to_envelope()})
        return 1
    with lock:
        if pending[0]:
            _say({"bytes": pending[0]})
    _say({"done": {"files": stats.file_count, "bytes": stats.size_bytes, "kind": stats.kind}})
    return 0


def _say(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
