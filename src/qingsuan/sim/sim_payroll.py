"""BEPS payroll days (代发工资): periodic credits concentrated on the days of the month
employers pay salaries (docs/SIMULATE.md, "Payroll days").

On a payroll day, BEPS carries, on top of its ordinary traffic, ``share`` x an ordinary
day's BEPS items as payroll credits: smaller amounts (lognormal, mean ``mean_fen``), sent
as the employers' batch files arrive in the morning. The defaults are this model's
assumptions (many Chinese employers pay around the 10th and the 25th), not published
figures. The one thing a reader would get wrong: a payroll day is a day of the month,
whatever the calendar; the credits still go only when BEPS is open (7x24).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

PPM: Final = 1_000_000
#: payroll credits per ordinary BEPS day's items (1.0: a payroll day carries twice as many)
DEFAULT_SHARE_PPM: Final = 1_000_000
#: a salary credit's mean (fen): 8,000 CNY
DEFAULT_MEAN_FEN: Final = 800_000
#: the salaries' lognormal shape
DEFAULT_SIGMA_PPM: Final = 600_000
#: the employers' batch files (items per hour, relative): the morning before work
PAYROLL_PROFILE: Final = (("06:00", "08:00", 1.0), ("08:00", "10:00", 2.0),
                          ("10:00", "12:00", 0.5))
#: the stream key of payroll credits (after HVPS 0, BEPS 1, IBPS 2, cards 3)
PAYROLL_STREAM: Final = 4


@dataclass(frozen=True, slots=True)
class Payroll:
    """A scenario's ``payroll:`` block."""

    #: days of the month (1 to 31; a month without that day has no payroll then)
    days: tuple[int, ...] = (10, 25)
    share_ppm: int = DEFAULT_SHARE_PPM
    mean_fen: int = DEFAULT_MEAN_FEN
    sigma_ppm: int = DEFAULT_SIGMA_PPM
    line: int = 0

    def on(self, day: dt.date) -> bool:
        return day.day in self.days

    def items(self, beps_items_per_day: int) -> int:
        """The payroll credits of a payroll day, for a BEPS day of that many items."""
        return beps_items_per_day * self.share_ppm // PPM

    @property
    def sigma(self) -> float:
        return self.sigma_ppm / PPM
