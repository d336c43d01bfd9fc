"""Value-map suggestions (appliance.sync.suggest): what the builder pre-fills from what Jira and
GitLab report, and what it leaves for a person."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from appliance.sync.spec import FieldMapping
from appliance.sync.suggest import (Pair, Person, Status, comparable, suggest_names, suggest_statuses,
                                    suggest_users)

JIRA = [Status("To Do", "todo"), Status("Backlog", "todo"), Status("In Progress", "in_progress"),
        Status("In Review", "in_progress"), Status("Done", "done")]
GITLAB = [Status("opened", "todo"), Status("status::doing", "in_progress"), Status("status::in review", "in_progress"),
          Status("closed", "done")]


def test_names_compare_without_case_spaces_separators_or_label_scope():
    assert comparable("In Progress") == comparable("in_progress") == comparable("status::in-progress") \
        == comparable("  IN  PROGRESS ")
    assert comparable("Done") != comparable("Closed")


def test_statuses_match_by_name_first_then_by_category():
    suggestion = suggest_statuses(JIRA, GITLAB)
    assert suggestion.pairs == [
        Pair("In Review", "status::in review", "same_name"),
        Pair("To Do", "opened", "same_category"),
        Pair("In Progress", "status::doing", "same_category"),
        Pair("Done", "closed", "same_category"),
        # GitLab has one "todo" status: Backlog shares it (many to one, after the one-to-one pairs).
        Pair("Backlog", "opened", "same_category"),
    ]
    assert suggestion.unmapped_a == [] and suggestion.unmapped_b == []
    # One-to-one pairs come first, so the engine maps "opened" back to "To Do", not "Backlog".
    assert list(suggestion.value_map.items())[:4] == [("In Review", "status::in review"), ("To Do", "opened"),
                                                      ("In Progress", "status::doing"), ("Done", "closed")]
    assert suggestion.value_map["Backlog"] == "opened"
    # Two Jira statuses share "opened": a reopened GitLab issue becomes "To Do", not "Backlog".
    assert suggestion.reverse_map == {"opened": "To Do"}


def test_reverse_map_prefers_the_a_status_of_the_b_status_category():
    # "Opened" pairs with "opened" by name although Jira files it under "in progress"; GitLab's
    # "opened" is a "todo" state, so an issue reopened there becomes "To Do".
    a = [Status("Opened", "in_progress"), Status("To Do", "todo"), Status("Done", "done")]
    b = [Status("opened", "todo"), Status("closed", "done")]
    suggestion = suggest_statuses(a, b)
    assert suggestion.value_map == {"Opened": "opened", "Done": "closed", "To Do": "opened"}
    assert suggestion.reverse_map == {"opened": "To Do"}


def test_one_to_one_suggestions_need_no_reverse_map():
    assert suggest_statuses(JIRA[2:], GITLAB).reverse_map == {}
    assert suggest_names(["High", "Low"], ["high", "low"]).reverse_map == {}


def test_statuses_without_a_category_counterpart_are_listed_unmapped():
    a = [Status("Open", "todo"), Status("Fixed", "done")]
    b = [Status("open", "todo"), Status("Working", "in_progress")]
    suggestion = suggest_statuses(a, b)
    assert suggestion.pairs == [Pair("Open", "open", "same_name")]
    assert suggestion.unmapped_a == ["Fixed"] and suggestion.unmapped_b == ["Working"]


def test_priorities_match_by_name_only():
    suggestion = suggest_names(["Highest", "High", "Medium", "Low"], ["high", "MEDIUM", "urgent"])
    assert suggestion.pairs == [Pair("High", "high", "same_name"), Pair("Medium", "MEDIUM", "same_name")]
    assert suggestion.unmapped_a == ["Highest", "Low"] and suggestion.unmapped_b == ["urgent"]
    assert suggestion.value_map == {"High": "high", "Medium": "MEDIUM"}
    nothing = suggest_names(["High"], [])
    assert nothing.pairs == [] and nothing.unmapped_a == ["High"]


def test_users_match_by_email_then_login_then_name_one_to_one():
    a = [Person("j1", "Alice Admin", "Alice@Example.com", None), Person("j2", "Bob Builder", None, "bob"),
         Person("j3", "Carol Chen", "carol@corp.example", None), Person("j4", "Dan", "dan@corp.example", None)]
    b = [Person("7", "Bob B.", "bob@elsewhere.example", "bob"), Person("8", "Alice", "alice@example.com", "alice"),
         Person("9", "carol chen", None, "cchen"), Person("10", "Eve", "eve@corp.example", "eve")]
    suggestion = suggest_users(a, b)
    assert [(x.id, y.id, reason) for x, y, reason in suggestion.pairs] == [
        ("j1", "8", "same_email"), ("j2", "7", "same_login"), ("j3", "9", "same_name")]
    assert [p.id for p in suggestion.unmapped_a] == ["j4"] and [p.id for p in suggestion.unmapped_b] == ["10"]
    assert suggestion.map == {"Alice@Example.com": "alice@example.com", "bob": "bob@elsewhere.example",
                              "carol@corp.example": "cchen"}


def test_a_user_without_email_or_login_matches_no_one_by_the_empty_string():
    suggestion = suggest_users([Person("1", "", None, None)], [Person("2", "", None, None)])
    assert suggestion.pairs == []


names = st.lists(st.text(alphabet="abcAB _-:", min_size=1, max_size=6), max_size=8)
categories = st.sampled_from(["todo", "in_progress", "done"])
statuses = st.lists(st.builds(Status, st.text(alphabet="abAB _", min_size=1, max_size=5), categories), max_size=8)


@given(statuses, statuses)
def test_every_status_is_either_paired_or_unmapped_and_pairs_are_sound(a, b):
    suggestion = suggest_statuses(a, b)
    a_names = list(dict.fromkeys(s.name for s in a))
    b_names = list(dict.fromkeys(s.name for s in b))
    paired_a = [p.a for p in suggestion.pairs]
    assert sorted(paired_a + suggestion.unmapped_a) == sorted(a_names)
    assert len(set(paired_a)) == len(paired_a)
    assert set(suggestion.unmapped_b) | {p.b for p in suggestion.pairs} == set(b_names)
    a_cat, b_cat = {s.name: s.category for s in a}, {s.name: s.category for s in b}
    for pair in suggestion.pairs:
        if pair.reason == "same_name":
            assert comparable(pair.a) == comparable(pair.b)
        else:
            assert a_cat[pair.a] == b_cat[pair.b]


@given(names, names)
def test_name_pairs_are_one_to_one(a, b):
    suggestion = suggest_names(a, b)
    assert len({p.b for p in suggestion.pairs}) == len(suggestion.pairs)
    assert all(comparable(p.a) == comparable(p.b) for p in suggestion.pairs)
    assert not {comparable(x) for x in suggestion.unmapped_a} & {comparable(y) for y in suggestion.unmapped_b}


@given(statuses, statuses)
def test_reverse_map_settles_every_shared_b_status_and_fits_the_spec(a, b):
    suggestion = suggest_statuses(a, b)
    shared = {p.b for p in suggestion.pairs if sum(q.b == p.b for q in suggestion.pairs) > 1}
    assert set(suggestion.reverse_map) == shared
    for b_value, a_value in suggestion.reverse_map.items():
        assert suggestion.value_map[a_value] == b_value
    FieldMapping(a_field="status", b_field="status", value_map=suggestion.value_map,
                 reverse_map=suggestion.reverse_map)
