"""The three-way merge (appliance.sync.merge) and the value mapping (appliance.sync.mapping).

The property tests run random interleavings of edits on both sides of one linked pair with sync
steps in between: a model of two apps (dicts of canonical values, an update time each) and the
engine's merge step (decide, write through Mapper, store bases as read back). The model keeps
its own record of the last synced value of each field, independent of the merge's bases, and
checks: an edit made on one side only is never lost; a field edited on both sides goes the way
the policy says (and "hold" leaves both edits in place and reports the conflict); a step with no
edits since the last one writes nothing; after quiescence both sides agree."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.connectors.base import Item, UserRef
from appliance.sync import merge
from appliance.sync.mapping import OTHER, Directory, Mapper
from appliance.sync.spec import IntegrationSpec

STATUS = {"To Do": "opened", "In Progress": "status::doing", "Done": "closed", "Blocked": "status::blocked"}
LABELS = ["api", "ui", "db", "urgent"]
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


def make_spec(policy: str = "hold", **extra) -> IntegrationSpec:
    return IntegrationSpec.model_validate({
        "side_a": {"connection_id": 1, "container": "PROJ"}, "side_b": {"connection_id": 2, "container": "7"},
        "type_mappings": [{"a_type": "Bug", "b_type": "issue", "b_labels": ["bug"]}],
        "field_mappings": [
            {"a_field": "title", "b_field": "title"},
            {"a_field": "status", "b_field": "status", "value_map": STATUS},
            {"a_field": "labels", "b_field": "labels"},
            {"a_field": "priority", "b_field": "milestone", "direction": "a_to_b"},
        ],
        "conflict_policy": policy, **extra})


class Side:
    """A fake app holding one item: canonical fields and an update time."""

    def __init__(self, name: str, fields: dict):
        self.name, self.fields, self.updated, self.writes = name, dict(fields), T0, 0

    def item(self) -> Item:
        return Item(id="1", key="1", url="", type="Bug" if self.name == "a" else "issue",
                    created_at=T0, updated_at=self.updated, fields=dict(self.fields))


class World:
    """Two sides, the merge's bases, and the model's own memory of what was last synced."""

    def __init__(self, policy: str):
        self.spec = make_spec(policy)
        self.mapper = Mapper(self.spec)
        self.clock = T0
        self.a = Side("a", {"title": "t0", "status": "To Do", "labels": [], "priority": "p0"})
        self.b = Side("b", {"title": "t0", "status": "opened", "labels": ["bug"], "milestone": "p0"})
        self.base_a = self.mapper.read("a", self.a.item())
        self.base_b = self.mapper.read("b", self.b.item())
        self.synced = {"a": dict(self.base_a), "b": dict(self.base_b)}
        self.held: set[str] = set()

    def tick(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    def edit(self, side: str, field: str, value) -> None:
        target = self.a if side == "a" else self.b
        if side == "b":
            field = {"priority": "milestone"}.get(field, field)
            if field == "status":
                value = STATUS[value]
            if field == "labels":
                value = sorted(set(value) | {"bug"})
        target.fields[field] = value
        target.updated = self.tick()

    def sync(self) -> list[merge.Decision]:
        cur_a = self.mapper.read("a", self.a.item())
        cur_b = self.mapper.read("b", self.b.item())
        decisions = merge.decide(self.spec.field_mappings, cur_a, cur_b, self.base_a, self.base_b,
                                 policy=self.spec.conflict_policy, translate=self.mapper.translate,
                                 a_updated=self.a.updated, b_updated=self.b.updated)
        tm = self.spec.type_mappings[0]
        for side, action in (("b", merge.A_TO_B), ("a", merge.B_TO_A)):
            target = self.b if side == "b" else self.a
            changes = {}
            for d in decisions:
                if d.action == action:
                    src_value = d.a_value if side == "b" else d.b_value
                    field = self.mapper.field_of(d.mapping, side)
                    value = self.mapper.translate(d.mapping, src_value, OTHER[side])
                    changes[field] = self.mapper.write_value(side, field, value, tm)
            if changes:
                target.fields.update(changes)
                target.updated = self.tick()
                target.writes += 1
        read_a = self.mapper.read("a", self.a.item())
        read_b = self.mapper.read("b", self.b.item())
        self.base_a, self.base_b = merge.new_bases(decisions, self.base_a, self.base_b, read_a, read_b)
        self.held = {d.name for d in decisions if d.action == merge.CONFLICT}
        return decisions


edits = st.one_of(
    st.tuples(st.just("title"), st.text("abc", min_size=1, max_size=3)),
    st.tuples(st.just("status"), st.sampled_from(sorted(STATUS))),
    st.tuples(st.just("labels"), st.lists(st.sampled_from(LABELS), unique=True).map(sorted)),
    st.tuples(st.just("priority"), st.sampled_from(["p0", "p1", "p2"])),
)
steps = st.lists(st.one_of(st.tuples(st.sampled_from("ab"), edits), st.just("sync")), max_size=30)


@settings(max_examples=300, deadline=None, database=None)
@given(policy=st.sampled_from(["hold", "a_wins", "b_wins", "newest"]), ops=steps)
def test_random_interleavings_lose_nothing_and_converge(policy, ops):
    world = World(policy)
    mapper = world.mapper
    mappings = {m.name: m for m in world.spec.field_mappings}
    last_edit_time: dict[tuple[str, str], datetime] = {}
    for op in [*ops, "sync"]:
        if op != "sync":
            side, (field, value) = op
            world.edit(side, field, value)
            last_edit_time[(side, field)] = world.clock
            continue
        before_a = mapper.read("a", world.a.item())
        before_b = mapper.read("b", world.b.item())
        writes = world.a.writes + world.b.writes
        updated_a, updated_b = world.a.updated, world.b.updated
        decisions = {d.name: d for d in world.sync()}
        after_a = mapper.read("a", world.a.item())
        after_b = mapper.read("b", world.b.item())
        for name, m in mappings.items():
            edited_a = before_a[name] != world.synced["a"][name]
            edited_b = before_b[name] != world.synced["b"][name]
            agree_before = mapper.translate(m, before_a[name], "a") == before_b[name]
            agree_after = mapper.translate(m, after_a[name], "a") == after_b[name]
            if m.direction == "a_to_b":
                if edited_a or agree_before:
                    assert after_a[name] == before_a[name] and agree_after, (name, decisions[name])
                else:   # B's own edit of a one-way field stays on B and does not flow to A
                    assert (after_a[name], after_b[name]) == (before_a[name], before_b[name])
            elif edited_a and not edited_b:
                assert after_a[name] == before_a[name] and agree_after, (name, decisions[name])
            elif edited_b and not edited_a:
                assert after_b[name] == before_b[name] and agree_after, (name, decisions[name])
            elif edited_a and edited_b and not agree_before:
                winner = {"a_wins": "a", "b_wins": "b"}.get(policy)
                if policy == "newest":
                    winner = "b" if updated_b > updated_a else "a"
                if policy == "hold":
                    assert decisions[name].action == merge.CONFLICT
                    assert (after_a[name], after_b[name]) == (before_a[name], before_b[name])
                    continue
                if winner in ("a", "b"):
                    kept = after_a if winner == "a" else after_b
                    assert kept[name] == (before_a if winner == "a" else before_b)[name] and agree_after
            else:
                assert after_a[name] == before_a[name] and after_b[name] == before_b[name]
            if name not in world.held:
                world.synced["a"][name], world.synced["b"][name] = after_a[name], after_b[name]
        if not world.held and world.a.writes + world.b.writes > writes:
            # A second step right after writes nothing: our own writes never echo.
            quiet = world.a.writes + world.b.writes
            assert all(d.action in (merge.NOTHING, merge.CONVERGE) for d in world.sync())
            assert world.a.writes + world.b.writes == quiet
    # Quiescence: every field agrees unless a person still has to decide it.
    writes = world.a.writes + world.b.writes
    final = world.sync()
    assert world.a.writes + world.b.writes == writes
    for d in final:
        if d.action != merge.CONFLICT and d.mapping.direction == "both":
            assert mapper.translate(d.mapping, mapper.read("a", world.a.item())[d.name], "a") == \
                mapper.read("b", world.b.item())[d.name]
    assert {d.name for d in final if d.action == merge.CONFLICT} <= {"title", "status", "labels"}


def test_no_edits_means_no_writes_and_no_base_churn():
    world = World("hold")
    for _ in range(3):
        decisions = world.sync()
        assert {d.action for d in decisions} == {merge.NOTHING}
    assert world.a.writes == world.b.writes == 0


def test_hold_keeps_both_edits_until_a_person_resolves():
    world = World("hold")
    world.edit("a", "title", "from A")
    world.edit("b", "title", "from B")
    decisions = {d.name: d for d in world.sync()}
    assert decisions["title"].action == merge.CONFLICT and decisions["title"].reason.startswith("changed on both")
    assert (world.a.fields["title"], world.b.fields["title"]) == ("from A", "from B")
    again = {d.name: d for d in world.sync()}
    assert again["title"].action == merge.CONFLICT and world.a.writes == world.b.writes == 0
    # The person picks B: B's value lands on A and the pair is quiet afterwards.
    cur_a, cur_b = world.mapper.read("a", world.a.item()), world.mapper.read("b", world.b.item())
    chosen = merge.decide(world.spec.field_mappings, cur_a, cur_b, world.base_a, world.base_b, policy="hold",
                          translate=world.mapper.translate, resolutions={"title": "b"})
    assert [d.action for d in chosen if d.name == "title"] == [merge.B_TO_A]


def test_both_sides_edited_to_the_same_value_converge_without_writes():
    world = World("hold")
    world.edit("a", "status", "Done")
    world.edit("b", "status", "Done")
    decisions = {d.name: d for d in world.sync()}
    assert decisions["status"].action == merge.CONVERGE
    assert world.a.writes == world.b.writes == 0
    assert world.base_a["status"] == "Done" and world.base_b["status"] == "closed"


def test_one_way_field_ignores_the_other_sides_edit():
    world = World("hold")
    world.edit("b", "priority", "p2")            # B's milestone; the mapping is A -> B only
    assert {d.name: d.action for d in world.sync()}["priority/milestone"] == merge.ACK_B
    assert world.a.fields["priority"] == "p0" and world.a.writes == 0
    world.edit("a", "priority", "p1")
    assert {d.name: d.action for d in world.sync()}["priority/milestone"] == merge.A_TO_B
    assert world.b.fields["milestone"] == "p1"


def test_newest_policy_takes_the_later_item():
    world = World("newest")
    world.edit("b", "title", "older from B")
    world.edit("a", "title", "newer from A")
    assert {d.name: d.action for d in world.sync()}["title"] == merge.A_TO_B
    assert world.b.fields["title"] == "newer from A"


def test_a_written_field_takes_its_read_back_base_but_others_keep_what_was_read():
    mapping = make_spec().field_mappings[0]
    decisions = [merge.Decision(mapping, merge.A_TO_B, "changed on A", "new", "old", "old", "old")]
    base_a, base_b = merge.new_bases(decisions, {"title": "old"}, {"title": "old"}, {"title": "new"},
                                     {"title": "new (normalised)"})
    assert base_a == {"title": "new"} and base_b == {"title": "new (normalised)"}


def test_mapper_maps_status_users_labels_and_types():
    alice_b = UserRef("77", "Alice", email="alice@example.com", login="alice")
    bob_b = UserRef("78", "Bob", email="bob@example.com", login="bob")
    spec = make_spec(users={"match": "email", "map": {"carol@a.example": "bob@example.com"},
                            "default_b": "bob"})
    spec.field_mappings.append(type(spec.field_mappings[0])(a_field="assignees", b_field="assignees"))
    mapper = Mapper(spec, {"a": Directory(), "b": Directory([alice_b, bob_b])})
    item = Item(id="10001", key="PROJ-1", url="", type="Bug", created_at=T0, updated_at=T0,
                fields={"title": "x", "status": "In Progress", "labels": ["ui"], "priority": None,
                        "assignees": [{"id": "acc-1", "name": "Alice A", "email": "ALICE@example.com"}]})
    source = mapper.read("a", item)
    assert source["priority/milestone"] is None and source["labels"] == ["ui"]
    tm = mapper.type_mapping("a", item)
    fields = mapper.create_fields("b", source, tm)
    assert fields == {"title": "x", "status": "status::doing", "labels": ["bug", "ui"],
                      "assignees": [{"id": "77", "name": "Alice", "email": "alice@example.com", "login": "alice"}]}
    carol = {"id": "acc-3", "name": "Carol", "email": "carol@a.example"}
    nobody = {"id": "acc-4", "name": "Dan", "email": "dan@a.example"}
    assignees = next(m for m in spec.field_mappings if m.name == "assignees")
    assert [u["login"] for u in mapper.translate(assignees, [carol], "a")] == ["bob"]      # explicit map
    assert [u["login"] for u in mapper.translate(assignees, [nobody], "a")] == ["bob"]     # default user
    status = spec.field_mappings[1]
    assert mapper.translate(status, "closed", "b") == "Done" and mapper.translate(status, "Done", "a") == "closed"
    b_item = Item(id="1", key="#1", url="", type="issue", created_at=T0, updated_at=T0,
                  fields={"labels": ["bug", "ui"]})
    assert mapper.type_mapping("b", b_item) is tm and mapper.read("b", b_item)["labels"] == ["ui"]
    b_item.fields["labels"] = ["ui"]
    assert mapper.type_mapping("b", b_item) is None
