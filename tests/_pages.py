"""Running a page of the docs as written: its code blocks, read from the page, and the servers
its commands start, on a free port instead of the one the page shows.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["block", "code_blocks", "free_port", "on_port", "wait_for_http"]


def code_blocks(page: Path) -> list[tuple[str, str]]:
    """Each fenced block of ``page``: its language and its text."""
    return re.findall(r"```(\w+)\n(.*?)```", page.read_text(), flags=re.S)


def block(blocks: list[tuple[str, str]], language: str, marker: str) -> str:
    """The one block in ``language`` that holds ``marker``."""
    found = [code for lang, code in blocks if lang == language and marker in code]
    assert len(found) == 1, f"{len(found)} {language} blocks hold {marker!r}"
    return found[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def on_port(text: str, page_port: str, port: int) -> str:
    """``text`` with the port the page shows replaced by ``port``."""
    assert page_port in text
    return text.replace(page_port, str(port))


def wait_for_http(
    url: str, process: subprocess.Popen[Any], log: Path, timeout: float = 30.0
) -> None:
    """Until ``url`` answers 200; fails, with ``log``, if ``process`` ends or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"nothing served {url}:\n{log.read_text()}")
        time.sleep(0.1)
