"""What the ``qingsuan`` commands share: consoles, the exit code of bad input, and reading
a scenario with every problem listed (``cli.py`` and ``cli_cards.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from qingsuan.sim.scenario import ScenarioError, load_scenario

#: exit code of bad input (an invalid file, bad options): nothing was done
EXIT_INVALID = 2


def out() -> Console:
    return Console(highlight=False)


def err() -> Console:
    # never hard-wrapped: each problem stays one FILE:LINE: reason line, whatever the width
    return Console(stderr=True, highlight=False, soft_wrap=True)


def load_or_exit(file: Path) -> Any:
    """The scenario in ``file``, or every problem with its line on stderr and exit 2."""
    try:
        return load_scenario(file)
    except ScenarioError as exc:
        console = err()
        console.print(f"[bold red]{file}: invalid scenario, nothing was run[/] "
                      f"({len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''})")
        for problem in exc.problems:
            console.print(f"  {problem}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
