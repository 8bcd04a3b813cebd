"""A minimal Language Server Protocol client over stdio, enough to drive a YAML language server.

Messages are JSON-RPC 2.0 framed by ``Content-Length`` headers. A reader thread queues what the
server sends; requests from the server (``workspace/configuration`` and friends) are answered
while the client waits, because the server blocks on them.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Settings = dict[str, Any]


class LanguageServerError(RuntimeError):
    """The server answered with an error, stopped, or did not answer in time."""


class LanguageServer:
    """One server process; use as a context manager so the process always ends."""

    def __init__(self, command: Sequence[str], cwd: Path, settings: Settings) -> None:
        self.settings = settings
        self.process = subprocess.Popen(
            list(command),
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.incoming: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.diagnostics: dict[str, list[dict[str, Any]]] = {}
        self.next_id = 0
        self.stderr: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        # Drained all along so that a chatty server never blocks on a full pipe.
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def __enter__(self) -> LanguageServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- framing -------------------------------------------------------------------------
    def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        try:
            while True:
                headers: dict[str, str] = {}
                while True:
                    line = stream.readline()
                    if not line:
                        return
                    line = line.strip()
                    if not line:
                        break
                    name, _, value = line.decode("ascii").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = stream.read(int(headers["content-length"]))
                self.incoming.put(json.loads(body))
        finally:
            self.incoming.put(None)

    def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        stream = self.process.stdin
        assert stream is not None
        stream.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        stream.flush()

    # -- what the server asks of the client ----------------------------------------------
    def _configuration(self, params: dict[str, Any]) -> list[Any]:
        return [self.settings.get(item.get("section", "")) for item in params.get("items", [])]

    def _handle(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        if method is None:
            return
        if method == "textDocument/publishDiagnostics":
            params = message["params"]
            self.diagnostics[params["uri"]] = params["diagnostics"]
        if "id" in message:
            result = (
                self._configuration(message["params"])
                if method == "workspace/configuration"
                else None
            )
            self._send({"id": message["id"], "result": result})

    def _next(self, deadline: float) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LanguageServerError("timed out waiting for the language server")
        try:
            message = self.incoming.get(timeout=remaining)
        except queue.Empty:
            raise LanguageServerError("timed out waiting for the language server") from None
        if message is None:
            stderr = b"".join(self.stderr).decode(errors="replace")
            raise LanguageServerError(f"the language server stopped:\n{stderr}")
        return message

    # -- what the client asks of the server ----------------------------------------------
    def notify(self, method: str, params: Any) -> None:
        self._send({"method": method, "params": params})

    def request(self, method: str, params: Any, timeout: float = 30.0) -> Any:
        self.next_id += 1
        request_id = self.next_id
        self._send({"id": request_id, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while True:
            message = self._next(deadline)
            if message.get("id") == request_id and "method" not in message:
                if "error" in message:
                    raise LanguageServerError(f"{method}: {message['error']}")
                return message.get("result")
            self._handle(message)

    def wait_for(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        """Handle server messages until ``condition()`` holds."""
        deadline = time.monotonic() + timeout
        while not condition():
            self._handle(self._next(deadline))

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.request("shutdown", None, timeout=5)
                self.notify("exit", None)
                self.process.wait(timeout=5)
            except (LanguageServerError, OSError, subprocess.TimeoutExpired):
                pass
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
        if self.process.stdin is not None:
            self.process.stdin.close()
