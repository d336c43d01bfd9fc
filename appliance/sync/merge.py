"""The field-level three-way merge: pure functions, no I/O.

For each mapped field the engine knows the current value on A and on B and the base of each
side: the value that side had when the pair was last synced, as read back from it (so a
side's own formatting never looks like an edit). All values here are the comparable values
produced by appliance.sync.mapping (one representation per side). A side "changed" a field
when its current value differs from its base; `translate(mapping, value, from_side)` turns a
value of one side into the other side's representation, and the two sides "agree" when A's
translated value equals B's.

Decisions (per field):
  NOTHING   neither side changed, or they agree and nothing to record;
  CONVERGE  they agree but a base is stale (both edited to the same value, or a lossy
            mapping): only the bases move, nothing is written;
  A_TO_B    copy A's value to B (A changed alone, or the conflict went A's way);
  B_TO_A    the reverse;
  ACK_A / ACK_B  a side changed a field whose direction does not let it flow (one-way
            mapping): that side's base moves so the edit is not reconsidered, nothing written;
  CONFLICT  both changed to different values and the policy is "hold": nothing is written and
            the bases stay, so the conflict stays visible until a person resolves it.

Invariants the property tests check (tests/unit/test_merge.py): a field edited on one side only
is never lost; after a sync step with no further edits both sides agree on every field whose
direction allows it (or a held conflict is reported); a step with no edits writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from appliance.sync.spec import ConflictPolicy, FieldMapping

NOTHING = "nothing"
CONVERGE = "converge"
A_TO_B = "a_to_b"
B_TO_A = "b_to_a"
ACK_A = "ack_a"
ACK_B = "ack_b"
CONFLICT = "conflict"

#: A base that was never recorded (a mapping added after the pair was linked).
MISSING = object()

Translate = Callable[[FieldMapping, Any, str], Any]


@dataclass(frozen=True)
class Decision:
    """What to do with one mapped field, and why (the "why" goes into the event log)."""

    mapping: FieldMapping
    action: str
    reason: str
    a_value: Any
    b_value: Any
    base_a: Any
    base_b: Any

    @property
    def name(self) -> str:
        return self.mapping.name

    @property
    def writes(self) -> bool:
        return self.action in (A_TO_B, B_TO_A)


def _winner(policy: ConflictPolicy, a_updated: datetime | None, b_updated: datetime | None) -> str | None:
    """"a", "b" or None (hold) for a field both sides changed differently. "newest" compares
    the items' update times (the apps do not say when each field changed); a tie goes to A so
    the outcome is deterministic."""
    if policy == "a_wins":
        return "a"
    if policy == "b_wins":
        return "b"
    if policy == "newest":
        if a_updated is None or b_updated is None:
            return "a" if b_updated is None else "b"
        return "b" if b_updated > a_updated else "a"
    return None


def decide_field(mapping: FieldMapping, a_value: Any, b_value: Any, base_a: Any, base_b: Any, *,
                 policy: ConflictPolicy, translate: Translate, a_updated: datetime | None = None,
                 b_updated: datetime | None = None, resolution: str | None = None) -> Decision:
    """The decision for one field (module docstring). `resolution` "a" / "b" is a person's
    answer to a held conflict on this field: that side's current value wins, whatever changed."""
    def decision(action: str, reason: str) -> Decision:
        return Decision(mapping, action, reason, a_value, b_value, base_a, base_b)

    a_flows = mapping.direction in ("both", "a_to_b")
    b_flows = mapping.direction in ("both", "b_to_a")
    if resolution in ("a", "b"):
        if translate(mapping, a_value, "a") == b_value:
            return decision(CONVERGE, "conflict resolved; sides agree")
        return decision(A_TO_B if resolution == "a" else B_TO_A, f"conflict resolved for {resolution.upper()}")

    a_changed = base_a is MISSING or a_value != base_a
    b_changed = base_b is MISSING or b_value != base_b
    agree = translate(mapping, a_value, "a") == b_value
    if agree:
        if a_changed or b_changed:
            return decision(CONVERGE, "sides agree" if a_changed and b_changed else "already equal")
        return decision(NOTHING, "unchanged")
    if not a_changed and not b_changed:
        # They disagree but nobody edited: a lossy mapping (e.g. a user with no counterpart)
        # settled this way at the last sync. Writing again would only loop.
        return decision(NOTHING, "unchanged (mapping is lossy)")
    if a_changed and not b_changed:
        return decision(A_TO_B, "changed on A") if a_flows else decision(ACK_A, "changed on A; mapping is B to A only")
    if b_changed and not a_changed:
        return decision(B_TO_A, "changed on B") if b_flows else decision(ACK_B, "changed on B; mapping is A to B only")
    if not b_flows:
        return decision(A_TO_B, "changed on both; mapping is A to B only")
    if not a_flows:
        return decision(B_TO_A, "changed on both; mapping is B to A only")
    winner = _winner(policy, a_updated, b_updated)
    if winner is None:
        return decision(CONFLICT, "changed on both sides; held for a person")
    return decision(A_TO_B if winner == "a" else B_TO_A, f"changed on both sides; policy {policy}")


def decide(mappings: Sequence[FieldMapping], current_a: Mapping[str, Any], current_b: Mapping[str, Any],
           base_a: Mapping[str, Any], base_b: Mapping[str, Any], *, policy: ConflictPolicy,
           translate: Translate, a_updated: datetime | None = None, b_updated: datetime | None = None,
           resolutions: Mapping[str, str] | None = None) -> list[Decision]:
    """One Decision per mapping. `current_*` and `base_*` are keyed by FieldMapping.name."""
    resolutions = resolutions or {}
    return [decide_field(m, current_a.get(m.name), current_b.get(m.name), base_a.get(m.name, MISSING),
                         base_b.get(m.name, MISSING), policy=policy, translate=translate,
                         a_updated=a_updated, b_updated=b_updated, resolution=resolutions.get(m.name))
            for m in mappings]


def new_bases(decisions: Sequence[Decision], base_a: Mapping[str, Any], base_b: Mapping[str, Any],
              read_back_a: Mapping[str, Any] | None, read_back_b: Mapping[str, Any] | None
              ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The bases to store after the writes the decisions called for. A written field's base is
    its value as read back from the side written (`read_back_*`, comparable values of the item
    the write returned); a field that was not written keeps the value it had when read (not the
    read-back one), so a person's edit made while we were writing is still seen as an edit."""
    out_a, out_b = dict(base_a), dict(base_b)
    for d in decisions:
        name = d.name
        if d.action == A_TO_B:
            out_a[name] = d.a_value
            out_b[name] = (read_back_b or {}).get(name, d.b_value)
        elif d.action == B_TO_A:
            out_b[name] = d.b_value
            out_a[name] = (read_back_a or {}).get(name, d.a_value)
        elif d.action in (CONVERGE, NOTHING):
            out_a[name], out_b[name] = d.a_value, d.b_value
        elif d.action == ACK_A:
            out_a[name] = d.a_value
            out_b.setdefault(name, d.b_value)
        elif d.action == ACK_B:
            out_b[name] = d.b_value
            out_a.setdefault(name, d.a_value)
        # CONFLICT: both bases stay, so the next look sees the same conflict.
    return out_a, out_b
