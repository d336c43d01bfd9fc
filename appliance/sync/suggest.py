"""Value-map suggestions for the integration builder: which status, priority and user of side A
corresponds to which of side B, judged from the values both apps report (Connector.describe and
list_users). Pure functions: no I/O; the API (appliance/web/endpoints/builder.py) feeds them what
the connectors described and the panel pre-fills its value maps with the result, which a person
then reviews.

How values are matched:
  - names compare by `comparable()`: case-insensitive, ignoring spaces, "-" and "_", and a
    scoped-label prefix ("status::In Progress" compares as "inprogress"), so "In Progress",
    "in_progress" and "status::in progress" are the same name;
  - statuses: same name first (reason "same_name"); then, for the statuses still without a
    partner, the same category (todo / in_progress / done) pairs them one to one in the order
    the apps list them (reason "same_category"); an A status whose category has no B status
    left is then mapped to the first B status of its category (many to one, still
    "same_category") so that every A status with a counterpart category gets a suggestion;
  - priorities: same name only;
  - users: same e-mail (case-insensitive), then same login, then same name (reasons "same_email",
    "same_login", "same_name"), one to one.

`unmapped_a` / `unmapped_b` list the values that got no partner, in the apps' order, so the panel
can show them. `value_map` is ready for FieldMapping.value_map (A value -> B value) and
`reverse_map` for FieldMapping.reverse_map: for every B value that more than one A value maps
to, the A value a change on B should land on (without it the engine takes the first in sorted
order, which may be "Backlog" where a person expects "To Do"). The choice, for statuses: an A
status of the B status's category (an "opened" GitLab issue -> a "todo" Jira status), and among
those the one paired first (same-name pairs, then the one-to-one pairs by category in the apps'
order, then the many-to-one ones). Plain names (priorities) pair one to one: no reverse_map. For
users, `map` is ready for Users.map (A e-mail or login -> B e-mail or login).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Reason = Literal["same_name", "same_category", "same_email", "same_login"]

_IGNORED = re.compile(r"[\s_\-]+")


def comparable(name: str) -> str:
    """The form two names are compared in (module docstring)."""
    return _IGNORED.sub("", name.rpartition("::")[2]).casefold()


@dataclass(frozen=True)
class Status:
    name: str
    category: str           # "todo" | "in_progress" | "done"


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    email: str | None = None
    login: str | None = None

    @property
    def handle(self) -> str:
        """How Users.map names this person: e-mail when known, else login, else id."""
        return self.email or self.login or self.id


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    reason: Reason


@dataclass
class Suggestion:
    """Suggested pairs of one kind of value; `value_map` A -> B (module docstring)."""

    pairs: list[Pair] = field(default_factory=list)
    unmapped_a: list[str] = field(default_factory=list)
    unmapped_b: list[str] = field(default_factory=list)
    reverse_map: dict[str, str] = field(default_factory=dict)

    @property
    def value_map(self) -> dict[str, str]:
        table: dict[str, str] = {}
        for pair in self.pairs:
            table.setdefault(pair.a, pair.b)
        return table


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _by_name(a: Sequence[str], b: Sequence[str]) -> tuple[list[Pair], list[str], list[str]]:
    """One-to-one pairs of equal comparable names; the names left on each side, in order."""
    free_b: dict[str, list[str]] = {}
    for name in b:
        free_b.setdefault(comparable(name), []).append(name)
    pairs, left_a = [], []
    for name in a:
        candidates = free_b.get(comparable(name))
        if candidates:
            pairs.append(Pair(name, candidates.pop(0), "same_name"))
        else:
            left_a.append(name)
    taken = {p.b for p in pairs}
    return pairs, left_a, [n for n in b if n not in taken]


def suggest_statuses(a: Sequence[Status], b: Sequence[Status]) -> Suggestion:
    """Status pairs by name, then by category (module docstring)."""
    a = list({s.name: s for s in a}.values())
    b = list({s.name: s for s in b}.values())
    pairs, left_a, left_b = _by_name([s.name for s in a], [s.name for s in b])
    category = {s.name: s.category for s in b}
    a_category = {s.name: s.category for s in a}
    still_a = []
    for name in left_a:
        partner = next((n for n in left_b if category[n] == a_category[name]), None)
        if partner is None:
            still_a.append(name)
        else:
            left_b.remove(partner)
            pairs.append(Pair(name, partner, "same_category"))
    unmapped_a = []
    for name in still_a:
        partner = next((s.name for s in b if s.category == a_category[name]), None)
        if partner is None:
            unmapped_a.append(name)
        else:
            pairs.append(Pair(name, partner, "same_category"))
    return Suggestion(pairs, unmapped_a, left_b, _reverse(pairs, a_category, category))


def _reverse(pairs: Sequence[Pair], a_category: dict[str, str], b_category: dict[str, str]) -> dict[str, str]:
    """For each B status several A statuses pair with, the one B changes map back to (module
    docstring): the first pair whose A status has the B status's category, else the first pair."""
    groups: dict[str, list[Pair]] = {}
    for pair in pairs:
        groups.setdefault(pair.b, []).append(pair)
    return {b: next((p.a for p in group if a_category[p.a] == b_category[b]), group[0].a)
            for b, group in groups.items() if len(group) > 1}


def suggest_names(a: Sequence[str], b: Sequence[str]) -> Suggestion:
    """Pairs of values with the same name (priorities, or any plain option list)."""
    pairs, left_a, left_b = _by_name(_unique(a), _unique(b))
    return Suggestion(pairs, left_a, left_b)


@dataclass
class UserSuggestion:
    """Suggested user pairs (by handle, see Person.handle); `map` is ready for Users.map."""

    pairs: list[tuple[Person, Person, Reason]] = field(default_factory=list)
    unmapped_a: list[Person] = field(default_factory=list)
    unmapped_b: list[Person] = field(default_factory=list)

    @property
    def map(self) -> dict[str, str]:
        return {a.handle: b.handle for a, b, _ in self.pairs}


def suggest_users(a: Sequence[Person], b: Sequence[Person]) -> UserSuggestion:
    """User pairs by e-mail, then login, then name, one to one (module docstring)."""
    left_a = list({p.id: p for p in a}.values())
    left_b = list({p.id: p for p in b}.values())
    out = UserSuggestion()
    keys = (("same_email", lambda p: (p.email or "").strip().casefold()),
            ("same_login", lambda p: (p.login or "").strip().casefold()),
            ("same_name", lambda p: comparable(p.name or "")))
    for reason, key in keys:
        index: dict[str, Person] = {}
        for person in left_b:
            if key(person):
                index.setdefault(key(person), person)
        remaining = []
        for person in left_a:
            partner = index.pop(key(person), None) if key(person) else None
            if partner is None:
                remaining.append(person)
            else:
                out.pairs.append((person, partner, reason))
                left_b.remove(partner)
        left_a = remaining
    out.unmapped_a, out.unmapped_b = left_a, left_b
    return out
