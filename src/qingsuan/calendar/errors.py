"""The calendar's error type, shared by its modules."""

from __future__ import annotations

__all__ = ["CalendarError"]


class CalendarError(ValueError):
    """A business-calendar problem: unknown calendar, bad table, date out of range."""
