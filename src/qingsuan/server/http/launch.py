"""What ``qingsuan serve`` prepares for the HTTP API before the engine starts: the bound
socket, the API keys (read from the key file, or made and shown once), and the lines it
prints once listening."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
from pathlib import Path
from typing import Any, Final

from qingsuan.server.http.auth import OPERATOR, KeyRing, key_file_of
from qingsuan.server.http.serve import HttpServer, bind

DEFAULT_HTTP_PORT: Final = 8080


class HttpLaunch:
    def __init__(self, sock: socket.socket | None, ring: KeyRing | None,
                 new_keys: dict[str, str], key_path: Path | None, sandbox_keys: bool,
                 note: str | None = None) -> None:
        self.sock, self.ring, self.new_keys = sock, ring, new_keys
        self.key_path, self.sandbox_keys, self.note = key_path, sandbox_keys, note
        #: where it listens (the socket itself is closed here when another process serves)
        self.address: tuple[str, int] | None = \
            tuple(sock.getsockname()[:2]) if sock is not None else None

    @classmethod
    def off(cls, note: str | None = None) -> HttpLaunch:
        return cls(None, None, {}, None, False, note)

    @classmethod
    def prepare(cls, host: str, port: int | None, key_kind: str, key_file: str | None,
                url: str, world: Any) -> HttpLaunch:
        """OSError: the port asked for cannot be bound; ValueError: the key file cannot be
        read."""
        names = _participants(url, world)
        path = Path(key_file) if key_file is not None else key_file_of(url)
        if key_kind == "sandbox":
            ring, _ = KeyRing.for_world(names, sandbox=True)
            new_keys: dict[str, str] = {}
        elif path is not None and path.exists():
            ring = KeyRing.load(path)
            new_keys = ring.issue(ring.missing(names))
        else:
            ring = KeyRing({})
            new_keys = ring.issue([*names, OPERATOR])
        try:
            sock = bind(host, DEFAULT_HTTP_PORT if port is None else port)
        except OSError as exc:
            if port is not None:
                raise
            note = (f"qingsuan: the HTTP API is off: port {DEFAULT_HTTP_PORT} on {host} is "
                    f"taken ({exc.strerror or exc}); give --http-port (0: any free port)")
            sys.stderr.write(note + "\n")
            return cls.off(note)
        return cls(sock, ring, new_keys, path if key_kind == "random" else None,
                   key_kind == "sandbox")

    def start(self, core: Any) -> None:
        """In the process that owns the engine: serve the API over ``core``."""
        from qingsuan.server.http.app import create_app

        assert self.sock is not None and self.ring is not None
        server = HttpServer(create_app(core, self.ring), self.sock)
        server.start()
        core.serve_http(server)

    def close_socket(self) -> None:
        """This process does not serve it (the core process does): close its copy."""
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()

    def keys_made(self) -> None:
        """The world is open: keep the new keys' hashes (only theirs: 0600)."""
        if self.new_keys and self.key_path is not None and self.ring is not None:
            self.ring.save(self.key_path)

    def ready_lines(self) -> list[str]:
        if self.address is None or self.ring is None:
            return []
        host, port = self.address
        shown = f"[{host}]" if ":" in host else host
        lines = [f"qingsuan: HTTP API listening on http://{shown}:{port} "
                 f"(OpenAPI: http://{shown}:{port}/docs)"]
        if self.sandbox_keys:
            lines.append("qingsuan: API keys: sandbox-<NAME> for each participant "
                         "(sandbox-ICBC), sandbox-operator for the operator (--api-keys "
                         "sandbox: documented, no protection)")
        for name, key in sorted(self.new_keys.items()):
            lines.append(f"qingsuan: API key of {name}: {key}")
        if self.new_keys:
            where = (f"only their SHA-256 is kept, in {self.key_path}" if self.key_path
                     else "nothing keeps them: new keys at the next start")
            lines.append(f"qingsuan: the keys above are shown once; {where}")
        return lines


def _participants(url: str, world: Any) -> list[str]:
    """The participants of the world the store holds, or of the scenario for a new store
    (or one that cannot be read: opening it for the engine then says why)."""
    if not url.startswith("memory:"):
        from qingsuan.store import open_log

        try:
            log = open_log(url, readonly=True)
        except Exception:  # no store yet (a new file, a schema without tables), or broken
            log = None
        if log is not None:
            try:
                first = next(iter(log.entries(0)), None)
            finally:
                log.close()
            if first is not None and first.kind == "world.build":
                spec = json.loads(first.payload[8:])  # (after the 8-byte timestamp)
                return [str(p[0]) for p in spec["participants"]]
    return [p.name for p in world.participants]
