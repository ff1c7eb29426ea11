"""docs/SERVER.md's session runs as written and prints what the page shows (on free ports
instead of 8080 and 8583: tests run side by side)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK = "@@ block done @@"


def _session() -> list[tuple[str, str]]:
    """(sh block, the output block after it) of the page's session."""
    text = (ROOT / "docs" / "SERVER.md").read_text(encoding="utf-8")
    section = text.split("## A session", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w*)\n(.*?)```", section, re.DOTALL)
    pairs = []
    for (kind, code), (_, shown) in zip(blocks[::2], blocks[1::2], strict=True):
        assert kind == "sh", code
        pairs.append((code, shown))
    return pairs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_server_page_session_runs_as_written(tmp_path: Path) -> None:
    pairs = _session()
    assert len(pairs) == 7, [p[0][:40] for p in pairs]
    port = _free_port()
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    script = []
    for code, _ in pairs:
        code = code.replace("localhost:8080", f"localhost:{port}").replace(
            "qingsuan serve ", f"qingsuan serve --http-port {port} --port 0 ")
        script += [code, f"echo '{MARK}'"]
    script.append("wait")
    bindir = str(Path(sys.executable).parent)
    done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, text=True,
                          capture_output=True, timeout=240,
                          env={**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr
    outputs = done.stdout.split(MARK + "\n")
    assert len(outputs) == len(pairs) + 1, done.stdout[-2000:]
    for (code, shown), out in zip(pairs, outputs, strict=False):
        assert out.strip() == shown.strip(), (code, out)
    assert "stopped cleanly" in (tmp_path / "serve.log").read_text()
