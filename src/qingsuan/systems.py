"""The payment systems a Qingsuan world runs, in one place: a log written by one release is
replayed with the same set (``qingsuan log verify``, restarts)."""

from __future__ import annotations

from qingsuan.cards.switch import CardSwitch
from qingsuan.cnaps.system import Cnaps
from qingsuan.engine import System


def standard_systems() -> list[System]:
    return [Cnaps(), CardSwitch()]
