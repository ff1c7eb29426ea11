"""What the browser tests share: Debian's Chromium, which Playwright drives (its own
browsers are never downloaded). Without it a browser test is skipped, except in CI (``CI``
set), where it fails: the pages must be tested in a browser there."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Final

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
