"""The CNAPS participants directory (参与者目录) and bank codes (行号).

A direct participant (直接参与者) holds a settlement account (清算账户) in the PBOC's book and
a mirror of it ("reserve at PBOC", 存放央行款项) in its own book; both move together on every
settlement. An indirect participant (间接参与者) settles through a named direct participant.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Final

from qingsuan.reasons import Reason

if TYPE_CHECKING:
    from qingsuan.params import Params


class ParticipantKind(Enum):
    DIRECT_BANK = "direct_bank"
    INDIRECT_BANK = "indirect_bank"
    CARD_SWITCH = "card_switch"
    PAYMENT_INSTITUTION = "payment_institution"


#: The parameter listing the CNAPS systems each kind of participant may use (DOMAIN.md §3:
#: banks all, non-bank payment institutions IBPS only).
SYSTEMS_PARAM: Final = {
    ParticipantKind.DIRECT_BANK: "cnaps.bank_systems",
    ParticipantKind.INDIRECT_BANK: "cnaps.bank_systems",
    ParticipantKind.CARD_SWITCH: "cnaps.card_switch_systems",
    ParticipantKind.PAYMENT_INSTITUTION: "cnaps.payment_institution_systems",
}


class ParticipantStatus(Enum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # 暂停: may receive, may not send
    CLOSED = "closed"        # 注销: neither


#: the members every payment compares with, as module globals (imported by name): 3.11's
#: EnumType defines __getattr__, so each ``ParticipantStatus.ACTIVE`` read is a slow
#: generic look-up (some 900 instructions)
KIND_INDIRECT_BANK: Final = ParticipantKind.INDIRECT_BANK
PARTICIPANT_ACTIVE: Final = ParticipantStatus.ACTIVE
PARTICIPANT_CLOSED: Final = ParticipantStatus.CLOSED


#: the article before a system's name in a refusal ("an HVPS participant")
_ARTICLE: Final = {"HVPS": "an"}

#: Bank code 行号: 3-digit bank category, 4-digit area (city), 4-digit branch, 1 check
#: digit. The card switch's code (category 903) keeps a check character of its own and is
#: not verified; payment institutions' codes start with a letter.
_BANK_CODE: Final = re.compile(r"^(?P<category>\d{3})(?P<area>\d{4})(?P<branch>\d{4})"
                               r"(?P<check>\d)$")
_SWITCH_CODE: Final = re.compile(r"^\d{11}[0-9A-Z]$")
_INSTITUTION_CODE: Final = re.compile(r"^[A-Z][A-Z0-9]{11}$")

#: Known bank categories (DOMAIN.md §1), for readable messages.
BANK_CATEGORIES: Final = {
    "102": "ICBC", "103": "ABC", "104": "BOC", "105": "CCB", "305": "CMBC", "308": "CMB",
    "313": "city commercial bank", "402": "rural credit cooperative", "001": "PBOC",
    "903": "card switch",
}


def check_digit(body: str) -> str:
    """The check digit of a bank code's first 11 digits: ISO/IEC 7064 MOD 11,10 (the hybrid
    system; GB/T 17710 in China). Every published CNAPS bank code satisfies it."""
    assert len(body) == 11 and body.isdigit(), body
    product = 10
    for digit in body:
        total = (product + int(digit)) % 10 or 10
        product = total * 2 % 11
    return str((11 - product) % 10)


def check_code(code: str, kind: ParticipantKind) -> str | None:
    """None if ``code`` is a well-formed code for ``kind``, else the reason it is not."""
    if not isinstance(code, str) or len(code) != 12:
        return f"a participant code has 12 characters (got {code!r})"
    if kind is ParticipantKind.PAYMENT_INSTITUTION:
        if not _INSTITUTION_CODE.match(code):
            return (f"payment institution code {code!r} must be a capital letter then 11 "
                    "capitals or digits")
        return None
    if kind is ParticipantKind.CARD_SWITCH:
        if not _SWITCH_CODE.match(code):
            return f"card switch code {code!r} must be 11 digits and 1 check character"
        return None
    if not _BANK_CODE.match(code):
        return (f"bank code {code!r} must be 3-digit category, 4-digit area, 4-digit branch "
                "and 1 check digit")
    expected = check_digit(code[:11])
    if code[11] != expected:
        return (f"bank code {code!r}: its check digit is {code[11]}, not {expected} (ISO/IEC "
                "7064 MOD 11,10 over the first 11 digits)")
    return None


@dataclass
class Participant:
    name: str
    code: str
    kind: ParticipantKind
    status: ParticipantStatus = ParticipantStatus.ACTIVE
    #: For an indirect participant: the direct participant whose account it settles in.
    settles_through: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"name": self.name, "code": self.code, "kind": self.kind.value,
                "status": self.status.value, "settles_through": self.settles_through}

    @classmethod
    def from_json(cls, doc: dict[str, str | None]) -> Participant:
        return cls(str(doc["name"]), str(doc["code"]), ParticipantKind(doc["kind"]),
                   ParticipantStatus(doc["status"]), doc.get("settles_through"))


class DirectoryError(ValueError):
    pass


class Directory:
    """Participants by name and by code."""

    def __init__(self) -> None:
        self._by_name: dict[str, Participant] = {}
        self._by_code: dict[str, Participant] = {}
        #: :meth:`barred`'s answers for one parameters object at one version (asked twice
        #: per payment; a participant's kind never changes, only the parameters do)
        self._barred: dict[tuple[str, str], str | None] = {}
        self._barred_params: object = None
        self._barred_version = -1
        #: :meth:`admit`'s admissions, system -> name -> the participant, for the same
        #: parameters object and version as :attr:`_barred` (emptied with it); a
        #: participant once listed stays listed, the same object
        self._admitted: dict[str, dict[str, Participant]] = {}
        #: :meth:`settling_kept`'s answers (a listed participant's never changes): HVPS and
        #: BEPS/IBPS ask for the sender's and the receiver's per payment
        self.settles: dict[str, str] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def add(self, participant: Participant) -> None:
        problem = check_code(participant.code, participant.kind)
        if problem is not None:
            raise DirectoryError(problem)
        if participant.name in self._by_name:
            raise DirectoryError(f"participant {participant.name} is already in the directory")
        if participant.code in self._by_code:
            raise DirectoryError(f"code {participant.code} already belongs to "
                                 f"{self._by_code[participant.code].name}")
        if participant.kind is ParticipantKind.INDIRECT_BANK:
            through = participant.settles_through
            if through is None or through not in self._by_name:
                raise DirectoryError(f"indirect participant {participant.name} must settle "
                                     f"through a listed direct participant (got {through!r})")
            if self._by_name[through].kind is ParticipantKind.INDIRECT_BANK:
                raise DirectoryError(f"{through} is itself indirect")
        self._by_name[participant.name] = participant
        self._by_code[participant.code] = participant

    def get(self, name: str) -> Participant:
        try:
            return self._by_name[name]
        except KeyError:
            raise DirectoryError(f"no participant named {name!r}") from None

    def by_code(self, code: str) -> Participant | None:
        return self._by_code.get(code)

    def barred(self, name: str, system: str, params: Mapping[str, object]) -> str | None:
        """None if ``name`` may send and receive through ``system`` (HVPS, BEPS, IBPS),
        else why not: its kind's ``cnaps.*_systems`` parameter leaves the system out."""
        version = getattr(params, "version", None)  # Params counts its changes
        if version is not None:
            if params is not self._barred_params or version != self._barred_version:
                self._barred, self._barred_params, self._barred_version = {}, params, version
                self._admitted = {}
            key = (name, system)
            if key in self._barred:
                return self._barred[key]
        kind = self.get(name).kind
        param = SYSTEMS_PARAM[kind]
        allowed = [s for s in str(params[param]).split(",") if s]
        answer = None if system in allowed else (
            f"{name} is a {kind.value.replace('_', ' ')}: it may use "
            f"{', '.join(allowed) or 'no CNAPS system'} only ({param}), not {system}")
        if version is not None:
            self._barred[(name, system)] = answer
        return answer

    def admit(self, name: str, role: str, system: str, params: Params
              ) -> Participant | tuple[str, str]:
        """``name``, a payment's sender or receiver (``role``), as a participant that may
        use ``system``, or why it may not: (RC01, not listed) or (AG01, its kind's
        ``cnaps.*_systems`` parameter leaves the system out: :meth:`barred`)."""
        if params is self._barred_params and params.version == self._barred_version:
            admitted = self._admitted.get(system, {}).get(name)
            if admitted is not None:
                return admitted
        found = self._by_name.get(name)
        if found is None:
            return (Reason.RC01.code, f"{role} {name!r} is not {_ARTICLE.get(system, 'a')} "
                                      f"{system} participant")
        barred = self.barred(name, system, params)
        if barred is not None:
            return (Reason.AG01.code, f"{role} {barred}")
        if params is self._barred_params:  # (barred kept its answer for these parameters)
            self._admitted.setdefault(system, {})[name] = found
        return found

    def refuse_payment(self, sender: str, receiver: str, system: str,
                       params: Params, returning: bool) -> tuple[str, str] | None:
        """Why ``system`` (HVPS, BEPS, IBPS) takes no payment from ``sender`` to ``receiver``
        (None: it takes it): either is not admitted (:meth:`admit`; the sender's refusal
        first), the sender is not active (a suspended participant sends nothing; a return,
        ``returning``, excepted: it only gives back what it received), or the receiver is
        closed (nobody pays it)."""
        # (asked per payment: both admissions are read from what admit kept, while the
        # parameters it kept them for are in force)
        paying = paid = None
        if params is self._barred_params and params.version == self._barred_version:
            admitted = self._admitted.get(system)
            if admitted is not None:
                paying, paid = admitted.get(sender), admitted.get(receiver)
        if paying is None:
            answer = self.admit(sender, "sender", system, params)
            if isinstance(answer, tuple):
                return answer
            paying = answer
        if paid is None:
            answer = self.admit(receiver, "receiver", system, params)
            if isinstance(answer, tuple):
                return answer
            paid = answer
        status = paying.status
        if status is not PARTICIPANT_ACTIVE and not returning:
            return (Reason.AG01.code, f"sender {sender} is {status.value}")
        if paid.status is PARTICIPANT_CLOSED:
            return (Reason.AG01.code, f"receiver {receiver} is closed")
        return None

    def settling(self, name: str) -> str:
        """The direct participant whose settlement account carries ``name``'s payments."""
        p = self.get(name)
        return p.settles_through if p.kind is KIND_INDIRECT_BANK else p.name  # type: ignore[return-value]

    def settling_kept(self, name: str) -> str:
        """:meth:`settling`, kept in :attr:`settles`; a name not in the directory stands
        for itself (its payment is refused RC01) and is not kept: it may join later."""
        found = self.settles.get(name)
        if found is None:
            if name not in self._by_name:
                return name
            found = self.settles[name] = self.settling(name)
        return found

    def set_status(self, name: str, status: ParticipantStatus) -> None:
        self.get(name).status = status

    def to_json(self) -> list[dict[str, str | None]]:
        return [p.to_json() for p in self._by_name.values()]

    @classmethod
    def from_json(cls, docs: list[dict[str, str | None]]) -> Directory:
        d = cls()
        for doc in docs:
            p = Participant.from_json(doc)
            d._by_name[p.name] = p
            d._by_code[p.code] = p
        return d
