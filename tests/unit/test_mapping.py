"""Value maps B -> A (appliance.sync.mapping, FieldMapping in appliance.sync.spec): when several A
values map to one B value, which A value a change on B lands on, whatever order the map was
stored in (PostgreSQL's jsonb reorders object keys), and that an item whose A value already maps
to B's value keeps it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from appliance.sync import merge
from appliance.sync.mapping import Mapper
from appliance.sync.spec import FieldMapping, IntegrationSpec

STATUSES = {"To Do": "opened", "Backlog": "opened", "In Progress": "opened", "Done": "closed"}


def make_mapper(*fields: dict) -> Mapper:
    return Mapper(IntegrationSpec.model_validate({
        "side_a": {"connection_id": 1, "container": "PROJ"}, "side_b": {"connection_id": 2, "container": "7"},
        "type_mappings": [{"a_type": "Bug", "b_type": "issue"}], "field_mappings": list(fields)}))


def status(**extra) -> dict:
    return {"a_field": "status", "b_field": "status", "value_map": STATUSES, **extra}


def test_without_reverse_map_the_first_a_value_in_sorted_order_wins():
    mapper = make_mapper(status())
    mapping = mapper.spec.field_mappings[0]
    assert mapper.translate(mapping, "opened", "b") == "Backlog"
    assert mapper.translate(mapping, "closed", "b") == "Done"
    assert mapper.translate(mapping, "Backlog", "a") == mapper.translate(mapping, "To Do", "a") == "opened"


@given(st.permutations(list(STATUSES.items())))
def test_the_choice_does_not_depend_on_the_order_the_map_was_stored_in(order):
    stored = json.loads(json.dumps(dict(order)))
    mapper = make_mapper(status(value_map=stored, reverse_map={"opened": "To Do"}))
    plain = make_mapper(status(value_map=stored))
    assert mapper.translate(mapper.spec.field_mappings[0], "opened", "b") == "To Do"
    assert plain.translate(plain.spec.field_mappings[0], "opened", "b") == "Backlog"


def test_reverse_map_decides_and_may_name_b_values_the_map_does_not_produce():
    mapper = make_mapper(status(reverse_map={"opened": "To Do", "reopened": "In Progress"}, default_a="Backlog"))
    mapping = mapper.spec.field_mappings[0]
    assert mapper.translate(mapping, "opened", "b") == "To Do"
    assert mapper.translate(mapping, "reopened", "b") == "In Progress"
    assert mapper.translate(mapping, "locked", "b") == "Backlog"       # neither map knows it: default_a


def test_an_a_value_that_already_maps_to_the_b_value_is_kept():
    mapper = make_mapper(status(reverse_map={"opened": "To Do"}))
    mapping = mapper.spec.field_mappings[0]
    assert mapper.translate(mapping, "opened", "b", current="In Progress") == "In Progress"
    assert mapper.translate(mapping, "opened", "b", current="Done") == "To Do"
    assert mapper.translate(mapping, "closed", "b", current="Backlog") == "Done"


def test_merge_writes_nothing_when_the_current_a_value_already_maps():
    """A "To Do" with B "closed" (A was moved back, B is reopened at the same time): they agree
    now, so even with "B wins" nothing is written to A."""
    mapper = make_mapper(status(reverse_map={"opened": "Backlog"}))
    mapping = mapper.spec.field_mappings[0]
    decision = merge.decide_field(mapping, "To Do", "opened", "Done", "closed", policy="b_wins",
                                  translate=mapper.translate)
    assert decision.action == merge.CONVERGE and not decision.writes


def test_list_fields_keep_the_elements_that_already_map():
    labels = {"urgent": "priority::high", "critical": "priority::high", "ui": "frontend"}
    mapper = make_mapper({"a_field": "labels", "b_field": "labels", "value_map": labels})
    mapping = mapper.spec.field_mappings[0]
    # B added "frontend": A keeps its "urgent" (not the sorted-first "critical") and gains "ui".
    assert mapper.translate(mapping, ["frontend", "priority::high"], "b", current=["urgent"]) == ["ui", "urgent"]
    assert mapper.translate(mapping, ["frontend", "priority::high"], "b") == ["critical", "ui"]


@pytest.mark.parametrize(("extra", "message"), [
    ({"reverse_map": {"opened": "Done"}},
     "must be one of the side A values that map to it: Backlog, In Progress, To Do"),
    ({"reverse_map": {"opened": ["To Do"]}}, "must be a plain value"),
    ({"reverse_map": {"opened": None}}, "must be a plain value"),
    ({"value_map": None, "reverse_map": {"opened": "To Do"}}, "reverse_map needs a value_map"),
])
def test_a_reverse_map_that_does_not_fit_is_refused(extra, message):
    with pytest.raises(ValidationError) as refused:
        FieldMapping.model_validate(status(**extra))
    (error,) = refused.value.errors()
    assert error["loc"] == ("reverse_map",) and message in error["msg"]


def test_a_reverse_map_survives_the_json_round_trip_of_the_spec():
    mapping = FieldMapping.model_validate(status(reverse_map={"opened": "To Do", "reopened": 3}))
    again = FieldMapping.model_validate_json(mapping.model_dump_json())
    assert again.reverse_map == {"opened": "To Do", "reopened": 3}


def test_a_sides_label_is_display_only():
    base = {"type_mappings": [{"a_type": "Bug", "b_type": "issue"}]}
    labelled = IntegrationSpec.model_validate({
        **base, "side_a": {"connection_id": 1, "container": "10000", "label": "Project (PROJ)"},
        "side_b": {"connection_id": 2, "container": "7"}})
    assert labelled.side_a.label == "Project (PROJ)" and labelled.side_b.label is None
    # Two labels do not make the same container two sides.
    with pytest.raises(ValidationError, match="same container"):
        IntegrationSpec.model_validate({**base, "side_a": {"connection_id": 1, "container": "7", "label": "x"},
                                        "side_b": {"connection_id": 1, "container": "7", "label": "y"}})
