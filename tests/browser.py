"""What the browser tests share: Debian's Chromium, which Playwright drives (its own
browsers are never downloaded). Without it a browser test is skipped, except in CI (``CI``
set), where it fails: the pages must be tested in a browser there."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

CHROMIUM: Final = Path("/usr/bin/chromium")
#: where the browser tests leave their screenshots, to be looked at
SHOTS: Final = Path(os.environ.get("QINGSUAN_SHOTS",
                                   str(Path(tempfile.gettempdir()) / "qingsuan-shots")))


def require_chromium(what: str) -> None:
    """Call at a browser test module's top: skip it (fail it in CI) without Chromium."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing (CI is set: {what} must be tested in a "
                    "browser; `make browser` installs Debian's chromium)", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium",
                allow_module_level=True)


@contextlib.contextmanager
def served_over_http(world: Any, start_us: int, names: list[str], *, deliver: bool = True
                     ) -> Iterator[tuple[str, Any, dict[str, str]]]:
    """``world`` as the sandbox serves it (a memory store, the virtual clock at
    ``start_us``, the documented sandbox keys of ``names``) over HTTP on a free loopback
    port: its URL, its core and the keys."""
    from qingsuan.server.http import KeyRing, SandboxClock, SandboxCore, create_app
    from qingsuan.server.http.serve import HttpServer, bind

    ring, keys = KeyRing.for_world(names, sandbox=True)
    core = SandboxCore(world, f"memory://{uuid.uuid4().hex}",
                       SandboxClock("virtual", start_us))
    try:
        server = HttpServer(create_app(core, ring, deliver=deliver), bind("127.0.0.1", 0))
        server.start()
        core.serve_http(server)
        host, port = server.sock.getsockname()[:2]
        yield f"http://{host}:{port}", core, keys
    finally:
        core.close()


@contextlib.contextmanager
def chromium_page(**context: Any) -> Iterator[Any]:
    """A page of Debian's Chromium (headless) in a browser context made with ``context``
    (viewport, ...); a script error on the page fails the test once it is done."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--no-sandbox"])
        try:
            page = browser.new_context(**context).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page
            assert not errors, f"the page's script failed: {errors}"
        finally:
            browser.close()
