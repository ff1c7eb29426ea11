"""``qingsuan simulate``: generated traffic through the world (registered by cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def simulate(
    file: Annotated[Path, typer.Argument(help="scenario file with a traffic: block")],
) -> None:
    """Run generated traffic (docs/SIMULATE.md)."""
    raise typer.Exit(1)
