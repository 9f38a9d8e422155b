"""What the browser tests share: Debian's Chromium (never a downloaded one), where screenshots go,
and an app served by a real uvicorn on a free port for the length of a test module."""
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from tests.support import ROOT, free_port

CHROMIUM = Path("/usr/bin/chromium")  # `make browser` installs it; never `playwright install`
SHOTS = ROOT / "var" / "screenshots"


@contextmanager
def serving(app: FastAPI, name: str) -> Iterator[str]:
    """The app on 127.0.0.1 in a thread of its own; yields its address, stops it at the end."""
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, name=f"{name}-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not uv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
