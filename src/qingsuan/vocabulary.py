"""The words the systems, the scenarios and the wire formats share, defined once here and
imported everywhere (a module of its own, without dependencies, so that the message
layer, the payment systems and the scenario loader can all use it).

Card vocabularies with behaviour of their own stay with the switch and are imported from
there: response codes (:class:`qingsuan.cards.iso8583.ResponseCode`), dispute steps and
chargeback reasons (:mod:`qingsuan.cards.disputes`).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final


class Priority(IntEnum):
    """HVPS queue levels (优先级), most urgent first. A scenario or a message names one in
    lower case (``extra_urgent``)."""

    CORRECTION = 0      # 错账更正
    EXTRA_URGENT = 1    # 特急
    PBOC_CHARGE = 2     # 人民银行收费
    NET_SETTLEMENT = 3  # 清算机构净额
    URGENT = 4          # 紧急
    NORMAL = 5          # 普通

    @property
    def label(self) -> str:
        """The name a scenario or a message carries: ``extra_urgent``."""
        return self.name.lower()

    @classmethod
    def parse(cls, name: str) -> Priority:
        try:
            return cls[name.upper()]
        except KeyError:
            raise ValueError(f"priority must be one of {', '.join(PRIORITY_LABELS)} "
                             f"(got {name!r})") from None


#: the priorities' names, most urgent first
PRIORITY_LABELS: Final = tuple(p.label for p in Priority)

#: BEPS business types (业务种类): ordinary, periodic (定期) and real-time (实时) credits
#: and debits
BEPS_KINDS: Final = ("ordinary_credit", "periodic_credit", "realtime_credit",
                     "ordinary_debit", "periodic_debit", "realtime_debit")

#: an issuer host's modes (a scenario's ``fault`` event, ``cards.fault``): no answers,
#: answers after the timeout, or well again
HOST_MODES: Final = ("down", "slow", "up")

#: the channels a customer pays at (柜面, 手机银行)
CHANNELS: Final = ("counter", "mobile")
