"""What ``qingsuan serve`` prepares for the HTTP API before the engine starts: the bound
socket, the API keys (read from the key file, or made and shown once), the HTTP edge
process (edge.py: it owns the port, answers the transfer route and relays the rest to the
application in the engine's process over a private Unix socket), and the lines it prints
once listening."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any, Final

from qingsuan.server.http.auth import OPERATOR, KeyRing, key_file_of
from qingsuan.server.http.serve import HttpServer, bind

DEFAULT_HTTP_PORT: Final = 8080
#: the application's keep-alive behind the edge: longer than the edge's own with its
#: clients (edge.KEEP_ALIVE_S), so the edge closes an idle relay before the app does
APP_KEEP_ALIVE_S: Final = 120


class HttpLaunch:
    def __init__(self, sock: socket.socket | None, ring: KeyRing | None,
                 new_keys: dict[str, str], key_path: Path | None, sandbox_keys: bool,
                 note: str | None = None, *, edge: Split | None = None) -> None:
        #: the socket the application is served on in the engine's process: the public
        #: one, or with an edge process, the private one the edge relays to
        self.sock, self.ring, self.new_keys = sock, ring, new_keys
        self.key_path, self.sandbox_keys, self.note = key_path, sandbox_keys, note
        self.edge = edge
        #: where it listens (the socket itself is closed here when another process serves)
        self.address: tuple[str, int] | None = edge.address if edge is not None else \
            tuple(sock.getsockname()[:2]) if sock is not None else None

    @classmethod
    def off(cls, note: str | None = None) -> HttpLaunch:
        return cls(None, None, {}, None, False, note)

    @classmethod
    def prepare(cls, host: str, port: int | None, key_kind: str, key_file: str | None,
                url: str, world: Any, *, edge_process: bool = True) -> HttpLaunch:
        """OSError: the port asked for cannot be bound (or the edge process not started);
        ValueError: the key file cannot be read. ``edge_process``: HTTP is read by an edge
        process of its own (else: by uvicorn in the engine's process)."""
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
        key_path = path if key_kind == "random" else None
        ring.path = key_path  # (a participant the operator adds gets its key written there)
        if not edge_process:
            return cls(sock, ring, new_keys, key_path, key_kind == "sandbox")
        try:
            split = Split.start(sock, ring)
        except OSError:
            sock.close()
            raise
        return cls(split.app_sock, ring, new_keys, key_path, key_kind == "sandbox",
                   edge=split)

    def start(self, core: Any) -> None:
        """In the process that owns the engine: serve the API over ``core`` (and, with an
        edge process, take its transfers)."""
        from qingsuan.server.http.app import create_app
        from qingsuan.server.http.deps import known_participants
        from qingsuan.server.http.edge_link import EdgeLink

        assert self.sock is not None and self.ring is not None
        self._keys_for_added(sorted(known_participants(core)))
        app = create_app(core, self.ring)
        server = HttpServer(app, self.sock, keep_alive_s=None if self.edge is None else
                            APP_KEEP_ALIVE_S)
        server.start()
        core.serve_http(server)
        if self.edge is not None:
            link = EdgeLink(core, self.edge.link, app.state.metrics,
                            sorted(known_participants(core)), self.ring)
            core.edge = link
            core.on_close.append(self.edge.remove_socket_file)
            link.start()

    def _keys_for_added(self, participants: list[str]) -> None:
        """Keys for the participants the operator added (``world.join``) that have none
        here: with sandbox keys, after every restart; with random keys, when the store's
        key file is not kept (a PostgreSQL or memory store), shown now like the others."""
        assert self.ring is not None
        missing = [n for n in participants if n not in self.ring.hashes]
        if not missing:
            return
        made = self.ring.issue(missing, sandbox=self.sandbox_keys)
        if self.sandbox_keys:
            return
        if self.key_path is not None:
            self.ring.save(self.key_path)
        for name, key in sorted(made.items()):
            sys.stdout.write(f"qingsuan: API key of {name}: {key} (shown once)\n")
        sys.stdout.flush()

    def close_socket(self) -> None:
        """This process does not serve it (the core process does): close its copy."""
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        if self.edge is not None:
            with contextlib.suppress(OSError):
                self.edge.link.close()

    def keys_made(self) -> None:
        """The world is open: keep the new keys' hashes (only theirs: 0600)."""
        if self.new_keys and self.key_path is not None and self.ring is not None:
            if self.key_path.exists():  # the engine's process wrote keys of added participants
                with contextlib.suppress(ValueError):
                    for name, key_hash in KeyRing.load(self.key_path).hashes.items():
                        if name not in self.ring.hashes:
                            self.ring.learn(name, key_hash)
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


class Split:
    """The HTTP edge process and what the engine's process keeps of it: the private socket
    the application is served on, and its end of the link."""

    def __init__(self, address: tuple[str, int], app_sock: socket.socket, app_dir: str,
                 link: socket.socket, pid: int) -> None:
        self.address, self.app_sock, self.app_dir = address, app_sock, app_dir
        self.link, self.pid = link, pid

    @classmethod
    def start(cls, public: socket.socket, ring: KeyRing) -> Split:
        """Fork the edge with the public socket (closed here: it serves it)."""
        from qingsuan.server.http import edge

        address = tuple(public.getsockname()[:2])
        app_dir = tempfile.mkdtemp(prefix="qingsuan-http-")  # (0700: ours alone)
        path = os.path.join(app_dir, "app.sock")
        app_sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            app_sock.bind(path)
            app_sock.listen(1024)
            app_sock.set_inheritable(True)
            ours, theirs = socket.socketpair()
        except OSError:
            app_sock.close()
            shutil.rmtree(app_dir, ignore_errors=True)
            raise
        pid = edge.fork(public, theirs, path, ring, ours)
        theirs.close()
        public.close()
        return cls(address, app_sock, app_dir, ours, pid)

    def remove_socket_file(self) -> None:
        shutil.rmtree(self.app_dir, ignore_errors=True)


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
