"""IntegrationSpec: what one integration syncs and how (stored as integrations.spec jsonb).

Side A and side B are each a connection (connections.id) and a container (ContainerRef.id).
Field mappings name canonical Item.fields keys (appliance.connectors.base) on each side; a
value map translates option values (status names, priorities); users map by e-mail or login
with an explicit map and defaults. The API (appliance/web/endpoints/integrations.py) validates
a spec against the connections (they exist, kinds fit); this module checks only what a spec can
check on its own. `IntegrationSpec.model_validate(row["spec"])` is how the engine reads it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

Direction = Literal["both", "a_to_b", "b_to_a"]
ConflictPolicy = Literal["newest", "a_wins", "b_wins", "hold"]
DeletePolicy = Literal["ignore", "close", "delete"]

#: Fields whose value is a user (UserRef dict) or a list of users: mapped through `users`.
USER_FIELDS = frozenset({"assignees", "reporter"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Side(_Model):
    connection_id: int = Field(gt=0)
    container: str = Field(min_length=1)
    label: str | None = Field(default=None, max_length=300,
                              description="What people call the container (\"Widgets (acme/widgets)\"), as the app "
                                          "named it when the side was chosen; shown by the panel, never used to sync.")


class TypeMapping(_Model):
    """Items of `a_type` on A correspond to `b_type` on B. `a_labels` / `b_labels`, when given,
    narrow the match to items carrying all those labels (GitLab has one item type, "issue", and
    tells kinds apart by label: Bug <-> issue labelled "bug") and are added on create."""

    a_type: str = Field(min_length=1)
    b_type: str = Field(min_length=1)
    a_labels: list[str] = Field(default_factory=list)
    b_labels: list[str] = Field(default_factory=list)


class FieldMapping(_Model):
    """Canonical field `a_field` on A <-> `b_field` on B. `value_map` maps A values to B values
    (for list fields it applies per element); a value missing from the map becomes `default_b`
    (A -> B) / `default_a` (B -> A) when given, else passes unchanged.

    B -> A goes through the value map backwards. When several A values map to one B value
    (Jira "To Do" and "Backlog" both -> GitLab "opened"), the A value is chosen thus:
      1. an item whose A value already maps to the B value keeps it (nothing is written);
      2. else `reverse_map[b_value]` when given (B value -> A value);
      3. else the first of those A values in sorted order (by their text), so that the choice
         never depends on the order the map was stored in (jsonb does not keep key order).
    `reverse_map` may also name B values the value map does not produce: they then map to the
    A value given (before `default_a`). Its values are plain (text, number, true/false).
    """

    a_field: str = Field(min_length=1)
    b_field: str = Field(min_length=1)
    direction: Direction = "both"
    value_map: dict[str, Any] | None = None
    reverse_map: dict[str, Any] | None = None
    default_a: Any = None
    default_b: Any = None

    @field_validator("reverse_map")
    @classmethod
    def _reverse_map_fits(cls, reverse_map: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        if reverse_map is None:
            return None
        if "value_map" not in info.data:
            return reverse_map      # the value map itself is invalid: that error is reported
        value_map = info.data["value_map"]
        if value_map is None:
            raise ValueError("reverse_map needs a value_map (it decides how B values map back to A)")
        sources: dict[str, list[str]] = {}
        for a_value, b_value in value_map.items():
            sources.setdefault(str(b_value), []).append(a_value)
        for b_value, a_value in reverse_map.items():
            if isinstance(a_value, (dict, list)) or a_value is None:
                raise ValueError(f"reverse_map[{b_value!r}] must be a plain value (text, number, true/false)")
            # A B value the map produces must map back to one of its own A values, else the two
            # directions would disagree and every sync would rewrite the field.
            candidates = sources.get(b_value)
            if candidates is not None and str(a_value) not in candidates:
                raise ValueError(f"reverse_map[{b_value!r}] must be one of the side A values that map to it: "
                                 f"{', '.join(sorted(candidates))}")
        return reverse_map

    @property
    def name(self) -> str:
        """The name the engine uses for this mapping in bases, events and conflicts."""
        return self.a_field if self.a_field == self.b_field else f"{self.a_field}/{self.b_field}"


class Users(_Model):
    """How a user on one side becomes a user on the other: by "email" or "login" (the other
    side's user with the same e-mail / login, from its list_users), `map` explicit pairs
    (A login-or-email -> B login-or-email), `default_a` / `default_b` (login or e-mail) for
    users that do not match (None: leave unassigned)."""

    match: Literal["email", "login"] = "email"
    map: dict[str, str] = Field(default_factory=dict)
    default_a: str | None = None
    default_b: str | None = None


class Comments(_Model):
    enabled: bool = True
    direction: Direction = "both"


class Attachments(_Model):
    enabled: bool = False
    max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)


class Filter(_Model):
    """Only items of these types / carrying all these labels take part (empty: no restriction)."""

    types: list[str] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)


class Filters(_Model):
    a: Filter = Field(default_factory=Filter)
    b: Filter = Field(default_factory=Filter)


class Start(_Model):
    """Which existing items the first run takes: "new" (created after the integration was
    enabled), "since" (updated at or after `since`), "all" (full history)."""

    mode: Literal["new", "since", "all"] = "new"
    since: datetime | None = None

    @model_validator(mode="after")
    def _since_given(self) -> Start:
        if self.mode == "since" and self.since is None:
            raise ValueError("start.since is required when start.mode is 'since'")
        if self.since is not None and self.since.tzinfo is None:
            raise ValueError("start.since needs a time zone offset")
        return self


class Schedule(_Model):
    interval_seconds: float = Field(default=60, ge=5)


class IntegrationSpec(_Model):
    side_a: Side
    side_b: Side
    type_mappings: list[TypeMapping] = Field(min_length=1)
    field_mappings: list[FieldMapping] = Field(default_factory=list)
    users: Users = Field(default_factory=Users)
    comments: Comments = Field(default_factory=Comments)
    attachments: Attachments = Field(default_factory=Attachments)
    filters: Filters = Field(default_factory=Filters)
    start: Start = Field(default_factory=Start)
    conflict_policy: ConflictPolicy = "hold"
    schedule: Schedule = Field(default_factory=Schedule)
    delete_policy: DeletePolicy = "ignore"

    @field_validator("field_mappings")
    @classmethod
    def _unique_fields(cls, mappings: list[FieldMapping]) -> list[FieldMapping]:
        for side in ("a_field", "b_field"):
            seen = [getattr(m, side) for m in mappings]
            duplicates = sorted({f for f in seen if seen.count(f) > 1})
            if duplicates:
                raise ValueError(f"{side} mapped twice: {', '.join(duplicates)}")
        return mappings

    @model_validator(mode="after")
    def _distinct_sides(self) -> IntegrationSpec:
        if (self.side_a.connection_id, self.side_a.container) == (self.side_b.connection_id, self.side_b.container):
            raise ValueError("side_a and side_b are the same container")
        return self
