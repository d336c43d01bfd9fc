"""An item's type as one more merged "field" of a pair: a type changed on one side changes the
other's mapped type.

A side's comparable type value is the side half of the first type mapping the item matches,
{"type": ..., "labels": [...]} (Jira: {"type": "Bug", "labels": []}; GitLab, whose kinds may be
labels: {"type": "issue", "labels": ["bug"]}), or {"type": <its type>, "labels": []} when no
mapping matches. The engine stores it in the pair's bases under the name "type" (so the three-way
merge, the conflict policy, held conflicts and their resolution work as for a field), and a
pair linked before types were tracked takes its current values as bases (no edit is assumed).

Writing a type to a side means its type (Connector.update_item key "type") when it differs and
its labels: the labels it has, without any label that encodes a type, plus the new type's
labels. A type no mapping covers never flows: that side's base moves and the other side keeps
its type (the event says why).
"""

from __future__ import annotations

from typing import Any

from appliance.connectors.base import Item
from appliance.sync import merge
from appliance.sync.mapping import OTHER, Mapper
from appliance.sync.spec import ConflictPolicy, FieldMapping, TypeMapping

TYPE = FieldMapping(a_field="type", b_field="type")
NAME = TYPE.name


def _half(tm: TypeMapping, side: str) -> dict[str, Any]:
    return {"type": tm.a_type, "labels": sorted(tm.a_labels)} if side == "a" else \
        {"type": tm.b_type, "labels": sorted(tm.b_labels)}


def value(mapper: Mapper, side: str, item: Item) -> dict[str, Any]:
    tm = mapper.type_mapping(side, item)
    return _half(tm, side) if tm is not None else {"type": item.type, "labels": []}


def mapping_of(mapper: Mapper, side: str, current: dict[str, Any] | None) -> TypeMapping | None:
    """The first type mapping whose `side` half is `current`."""
    return next((tm for tm in mapper.spec.type_mappings if _half(tm, side) == current), None)


def translate(mapper: Mapper, current: Any, from_side: str) -> dict[str, Any] | None:
    tm = mapping_of(mapper, from_side, current)
    return _half(tm, OTHER[from_side]) if tm is not None else None


def decide(mapper: Mapper, base_a: dict, base_b: dict, a_value: dict, b_value: dict, *,
           policy: ConflictPolicy, a_item: Item, b_item: Item, resolution: str | None) -> merge.Decision:
    """The merge decision for the pair's type (module docstring)."""
    def tr(mapping: FieldMapping, v: Any, from_side: str) -> Any:
        return translate(mapper, v, from_side)

    d = merge.decide_field(TYPE, a_value, b_value, base_a.get(NAME, a_value), base_b.get(NAME, b_value),
                           policy=policy, translate=tr, a_updated=a_item.updated_at, b_updated=b_item.updated_at,
                           resolution=resolution)
    if d.writes:
        source = "a" if d.action == merge.A_TO_B else "b"
        if translate(mapper, d.a_value if source == "a" else d.b_value, source) is None:
            name = (a_item if source == "a" else b_item).type
            ack = merge.ACK_A if source == "a" else merge.ACK_B
            return merge.Decision(TYPE, ack, f"changed on {source.upper()} to {name!r}, which no type mapping "
                                             f"covers; {OTHER[source].upper()} keeps its type",
                                  d.a_value, d.b_value, d.base_a, d.base_b)
    return d


def final_values(mapper: Mapper, d: merge.Decision, chosen: dict[str, Any] | None) -> dict[str, dict]:
    """Each side's type value after the writes `d` calls for (and a person's chosen A value)."""
    out = {"a": d.a_value, "b": d.b_value}
    if d.action == merge.A_TO_B:
        out["b"] = translate(mapper, d.a_value, "a")
    elif d.action == merge.B_TO_A:
        out["a"] = translate(mapper, d.b_value, "b")
    if chosen is not None and mapping_of(mapper, "a", chosen) is not None:
        out["a"] = chosen
    return out


def writes(mapper: Mapper, side: str, item: Item, target: dict[str, Any], labels: list[str] | None
           ) -> dict[str, Any]:
    """The update_item changes that give `item` (on `side`) the type value `target`; `labels`
    are the labels being written anyway (None: the item's own)."""
    changes: dict[str, Any] = {}
    if target["type"] != item.type:
        changes["type"] = target["type"]
    own = set(item.fields.get("labels") or []) if labels is None else set(labels)
    wanted = sorted((own - mapper.type_labels[side]) | set(target["labels"]))
    if labels is not None or wanted != sorted(item.fields.get("labels") or []):
        changes["labels"] = wanted
    return changes
