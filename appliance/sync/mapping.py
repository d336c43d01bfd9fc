"""Turning one side's item into the other side's field values, and back.

Every mapped field has a "comparable" value per side (`Mapper.read`): what the merge compares
and what the bases store. Normalisation: "" and None are the same (no value); labels are a
sorted list without the labels that only encode the item type (TypeMapping.a_labels /
b_labels) so a type label never reads as a label edit; users are UserRef dicts (id, name,
email, login), assignee lists sorted by id.

`Mapper.translate(mapping, value, from_side, current=...)` maps a comparable value to the other
side: value maps (per element for lists, defaults for unmapped values) and users
(by e-mail or login through the other side's user directory, explicit map first, default user
last; a user with no counterpart and no default is dropped). B -> A follows the value map
backwards as FieldMapping documents: when several A values map to one B value, A's current value
is kept if it already maps there (`current`), else `reverse_map` decides, else the first of them
in sorted order: never the order the map happens to be stored in. Rich text (description) keeps
its text and has its mentions mapped to the same users, without the defaults (`Mapper.rich_text`,
appliance.sync.mentions). `Mapper.write_value` turns a
comparable value into what Connector.create_item / update_item take (labels gain the type
labels of the pair's type mapping).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from appliance.connectors.base import Item, UserRef
from appliance.richtext import account_login
from appliance.sync import mentions
from appliance.sync.spec import USER_FIELDS, FieldMapping, IntegrationSpec, TypeMapping

OTHER = {"a": "b", "b": "a"}
SIDE_NAME = {"a": "A", "b": "B"}     # as people read them
#: Fields holding rich text (Markdown): their mentions are mapped through the users.
RICH_TEXT_FIELDS = frozenset({"description"})


def uses_users(spec: IntegrationSpec) -> bool:
    """Whether syncing under `spec` maps users (so the engine loads both sides' directories):
    a user field is mapped, or text that can mention people (rich text, comments) is synced."""
    fields = {f for m in spec.field_mappings for f in (m.a_field, m.b_field)}
    return bool(fields & (USER_FIELDS | RICH_TEXT_FIELDS)) or spec.comments.enabled


class Directory:
    """The users of one side (from Connector.list_users), looked up by e-mail or login,
    case-insensitively."""

    def __init__(self, users: Iterable[UserRef] = ()):
        self.by_key: dict[str, dict[str, Any]] = {}
        self.by_mention: dict[str, dict[str, Any]] = {}
        for user in users:
            ref = user.to_dict()
            for key in (user.email, user.login):
                if key:
                    self.by_key.setdefault(key.lower(), ref)
            self.by_mention.setdefault(mention_key(ref).lower(), ref)

    def find(self, key: str | None) -> dict[str, Any] | None:
        return self.by_key.get(key.lower()) if key else None

    def find_mentioned(self, login: str) -> dict[str, Any] | None:
        """The user that rich text of this side mentions as ``@login`` (`mention_key`)."""
        return self.by_mention.get(login.lower())


def mention_key(user: dict[str, Any]) -> str:
    """How rich text mentions `user` (``@key``): the login where the app has one (GitLab, Jira
    Server / Data Center), else the id (Jira Cloud accountId) as appliance.richtext.account_login
    spells it (an id that no login can spell is returned as it is: it matches no mention)."""
    return user.get("login") or account_login(str(user["id"])) or str(user["id"])


def _user(value: Any) -> dict[str, Any] | None:
    if not value:
        return None
    return {"id": str(value["id"]), "name": value.get("name") or "", "email": value.get("email"),
            "login": value.get("login")}


class Mapper:
    """Mapping for one integration; `directories` {"a": Directory, "b": Directory}."""

    def __init__(self, spec: IntegrationSpec, directories: Mapping[str, Directory] | None = None):
        self.spec = spec
        self.directories = dict(directories or {"a": Directory(), "b": Directory()})
        self.type_labels = {"a": {label for t in spec.type_mappings for label in t.a_labels},
                            "b": {label for t in spec.type_mappings for label in t.b_labels}}

    # -- types and filters --------------------------------------------------------------------

    def type_mapping(self, side: str, item: Item) -> TypeMapping | None:
        """The first type mapping that `item` matches on `side` (its type and all its labels)."""
        labels = set(item.fields.get("labels") or [])
        for tm in self.spec.type_mappings:
            wanted_type = tm.a_type if side == "a" else tm.b_type
            wanted_labels = tm.a_labels if side == "a" else tm.b_labels
            if item.type == wanted_type and set(wanted_labels) <= labels:
                return tm
        return None

    def passes_filter(self, side: str, item: Item) -> bool:
        rule = self.spec.filters.a if side == "a" else self.spec.filters.b
        if rule.types and item.type not in rule.types:
            return False
        return set(rule.labels) <= set(item.fields.get("labels") or [])

    # -- reading ------------------------------------------------------------------------------

    @staticmethod
    def field_of(mapping: FieldMapping, side: str) -> str:
        return mapping.a_field if side == "a" else mapping.b_field

    def comparable(self, side: str, field: str, value: Any) -> Any:
        if value == "" or value is None:
            return None
        if field == "labels":
            return sorted(set(value) - self.type_labels[side]) or None
        if field in USER_FIELDS:
            if isinstance(value, list):
                users = [u for u in (_user(v) for v in value) if u]
                return sorted(users, key=lambda u: u["id"]) or None
            return _user(value)
        if isinstance(value, list):
            return value or None
        return value

    def read(self, side: str, item: Item) -> dict[str, Any]:
        """The comparable value of every mapped field of `item` on `side`."""
        return {m.name: self.comparable(side, self.field_of(m, side), item.fields.get(self.field_of(m, side)))
                for m in self.spec.field_mappings}

    # -- translating --------------------------------------------------------------------------

    @staticmethod
    def reverse_table(mapping: FieldMapping) -> dict[str, Any]:
        """B value (as text) -> the A value it maps back to: `reverse_map` first, else the first
        in sorted order of the A values mapping to it (FieldMapping)."""
        table: dict[str, Any] = {}
        for a_value in sorted(mapping.value_map or {}):
            table.setdefault(str(mapping.value_map[a_value]), a_value)
        table.update((str(b), a) for b, a in (mapping.reverse_map or {}).items())
        return table

    def _map_value(self, mapping: FieldMapping, value: Any, from_side: str) -> Any:
        if mapping.value_map is None:
            return value
        if from_side == "a":
            table, default = mapping.value_map, mapping.default_b
        else:
            table, default = self.reverse_table(mapping), mapping.default_a
        if str(value) in table:
            return table[str(value)]
        return default if default is not None else value

    def _maps_to(self, mapping: FieldMapping, a_value: Any, b_value: Any) -> bool:
        """Does A's `a_value` (one value, not a list) map to `b_value`?"""
        return str(self._map_value(mapping, a_value, "a")) == str(b_value)

    def _keep_current(self, mapping: FieldMapping, value: Any, current: Any) -> Any:
        """B's `value` for A, keeping what of A's `current` value already maps to it (a value
        map may send several A values to one B value: "Backlog" and "To Do" -> "opened"; an
        item in "Backlog" must not become "To Do" because B said "opened")."""
        if not isinstance(value, list):
            if current is not None and not isinstance(current, list) and self._maps_to(mapping, current, value):
                return current
            return self._map_value(mapping, value, "b")
        spare = list(current) if isinstance(current, list) else []
        out = []
        for element in value:
            kept = next((c for c in spare if self._maps_to(mapping, c, element)), None)
            if kept is None:
                out.append(self._map_value(mapping, element, "b"))
            else:
                spare.remove(kept)
                out.append(kept)
        return out

    def _counterpart(self, user: dict[str, Any], from_side: str) -> dict[str, Any] | None:
        """The other side's user for `user`: explicit map first, then the match key; None if none."""
        users = self.spec.users
        directory = self.directories[OTHER[from_side]]
        key = user.get(users.match)
        explicit = dict(users.map) if from_side == "a" else {v: k for k, v in users.map.items()}
        for candidate in (explicit.get(user.get("email") or ""), explicit.get(user.get("login") or ""), key):
            found = directory.find(candidate)
            if found:
                return _user(found)
        return None

    def _map_user(self, user: dict[str, Any], from_side: str) -> dict[str, Any] | None:
        found = self._counterpart(user, from_side)
        if found:
            return found
        to_side = OTHER[from_side]
        default = self.spec.users.default_b if to_side == "b" else self.spec.users.default_a
        return _user(self.directories[to_side].find(default))

    def mention_counterpart(self, login: str, from_side: str) -> str | None:
        """How the other side mentions the person `from_side`'s rich text mentions as ``@login``;
        None when they have no counterpart. The default users never apply: a mention of
        someone else would be worse than text. A login missing from `from_side`'s directory
        (list_users may list only a project's members) still maps by an explicit pair or, when
        users match by login, by the login itself."""
        user = self.directories[from_side].find_mentioned(login) or {"id": login, "login": login}
        found = self._counterpart(user, from_side)
        return mention_key(found) if found else None

    def rich_text(self, text: str | None, from_side: str, current: str | None = None) -> str | None:
        """Rich text (Markdown) of `from_side` for the other side: mentions mapped through the
        users (appliance.sync.mentions); `current`, the other side's text now, keeps its mentions
        of people `from_side` has no counterpart of (they came over as text)."""
        to_side = OTHER[from_side]
        keep = [login for login in mentions.mentioned(current)
                if self.mention_counterpart(login, to_side) is None]
        return mentions.translate(text, lambda login: self.mention_counterpart(login, from_side), keep)

    def translate(self, mapping: FieldMapping, value: Any, from_side: str, current: Any = None) -> Any:
        """`value` (comparable, on `from_side`) as the other side's comparable value. `current`:
        the other side's comparable value now. B -> A through a value map, what of it already
        maps to `value` is kept (FieldMapping), so writing the result changes only what B's
        change calls for; for rich text, its mentions of people `from_side` cannot name stay
        mentions (`rich_text`)."""
        to_side = OTHER[from_side]
        target_field = self.field_of(mapping, to_side)
        if value is None:
            default = mapping.default_b if to_side == "b" else mapping.default_a
            if target_field in USER_FIELDS or default is None:
                return None
            return self.comparable(to_side, target_field, default)
        if self.field_of(mapping, from_side) in USER_FIELDS:
            users = value if isinstance(value, list) else [value]
            mapped = [u for u in (self._map_user(u, from_side) for u in users) if u]
            if isinstance(value, list) or target_field == "assignees":
                unique = {u["id"]: u for u in mapped}
                return self.comparable(to_side, target_field, list(unique.values()))
            return mapped[0] if mapped else None
        if self.field_of(mapping, from_side) in RICH_TEXT_FIELDS and mapping.value_map is None:
            return self.comparable(to_side, target_field,
                                   self.rich_text(value, from_side, current if isinstance(current, str) else None))
        if from_side == "b" and mapping.value_map is not None:
            return self.comparable(to_side, target_field, self._keep_current(mapping, value, current))
        if isinstance(value, list):
            return self.comparable(to_side, target_field,
                                   [self._map_value(mapping, v, from_side) for v in value])
        return self.comparable(to_side, target_field, self._map_value(mapping, value, from_side))

    # -- writing ------------------------------------------------------------------------------

    def write_value(self, side: str, field: str, value: Any, tm: TypeMapping | None) -> Any:
        """A comparable value as the connector takes it for `field` on `side`."""
        if field == "labels":
            type_labels = (tm.a_labels if side == "a" else tm.b_labels) if tm else []
            return sorted(set(value or []) | set(type_labels))
        if field == "assignees":
            return list(value or [])
        if field == "description":
            return value or ""
        return value

    def create_fields(self, to_side: str, source: Mapping[str, Any], tm: TypeMapping) -> dict[str, Any]:
        """Field values for creating the counterpart on `to_side` of an item whose comparable
        values are `source` (read on the other side). Mappings that do not flow towards
        `to_side` still seed the new item (it has no value of its own yet)."""
        from_side = OTHER[to_side]
        fields: dict[str, Any] = {}
        for m in self.spec.field_mappings:
            target = self.field_of(m, to_side)
            fields[target] = self.write_value(to_side, target, self.translate(m, source.get(m.name), from_side), tm)
        if "labels" not in fields:
            type_labels = tm.a_labels if to_side == "a" else tm.b_labels
            if type_labels:
                fields["labels"] = sorted(type_labels)
        return {k: v for k, v in fields.items() if v is not None}
