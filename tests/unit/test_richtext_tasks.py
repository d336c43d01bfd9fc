"""Task list items (GitLab's ``- [ ] todo`` / ``- [x] done``) through every rich-text format.

Markdown writes them as GitLab does; ADF as taskList/taskItem where its schema allows (else as the
text "[ ] " opening a list item); Jira wiki markup, which has no checkboxes, as the escaped text
``\\[ \\]`` / ``\\[x\\]`` opening a list item, which Jira shows as "[ ]" / "[x]".  Each reads back
as the same task item: no escapes creep into the Markdown, nothing grows.
"""

from __future__ import annotations

import pytest

from appliance.richtext import from_adf, from_jira_wiki, normalise, to_adf, to_jira_wiki
from appliance.sync import mentions

from .test_richtext import CLOUD, SERVER, _assert_valid_adf


def _task_item(text, done=False, local_id="x"):
    item = {"type": "taskItem", "attrs": {"localId": local_id, "state": "DONE" if done else "TODO"}}
    if text:
        item["content"] = [{"type": "text", "text": text}]
    return item


def _doc(*content):
    return {"type": "doc", "version": 1, "content": list(content)}


@pytest.mark.parametrize(
    ("md", "wiki"),
    [
        ("- [ ] todo\n- [x] done", "* \\[ \\] todo\n* \\[x\\] done"),
        (
            "- [ ] parent\n  - [x] child\n    - [ ] grandchild",
            "* \\[ \\] parent\n** \\[x\\] child\n*** \\[ \\] grandchild",
        ),
        ("1. [ ] first\n2. [x] second", "# \\[ \\] first\n# \\[x\\] second"),
        ("- [ ] task\n- plain item", "* \\[ \\] task\n* plain item"),
        ("- plain\n  - [x] nested task\n  - [ ] another", "* plain\n** \\[x\\] nested task\n** \\[ \\] another"),
        ("- [x] **bold** and `code` @alice", "* \\[x\\] *bold* and {{code}} [~srv_alice]"),
        ("- [ ] line one\\\n  line two", "* \\[ \\] line one\\\\line two"),
        ("- [ ]\n  - [x] only a sub-task", "* \\[ \\]\n** \\[x\\] only a sub-task"),
        ("> - [ ] quoted task", "{quote}\n* \\[ \\] quoted task\n{quote}"),
    ],
)
def test_task_lists_reach_jira_wiki_as_bracket_text_and_come_back_as_tasks(md, wiki):
    assert normalise(md) == md
    assert to_jira_wiki(md, SERVER) == wiki
    assert from_jira_wiki(wiki, SERVER) == md
    assert to_jira_wiki(from_jira_wiki(wiki, SERVER), SERVER) == wiki
    assert from_adf(to_adf(md, CLOUD), CLOUD) == md


@pytest.mark.parametrize(
    ("wiki", "md"),
    [
        ("* [ ] typed by hand\n* [x] done\n* [X] also done", "- [ ] typed by hand\n- [x] done\n- [x] also done"),
        ("# [x] numbered", "1. [x] numbered"),
        ("- [ ] dash bullet", "- [ ] dash bullet"),
    ],
)
def test_bracket_text_typed_in_jira_reads_as_a_task(wiki, md):
    assert from_jira_wiki(wiki, SERVER) == md


@pytest.mark.parametrize(
    ("md", "canonical"),
    [
        ("* [ ] star bullet\n+ [X] plus bullet", "- [ ] star bullet\n- [x] plus bullet"),
        ("- [ ]   wide gap", "- [ ] wide gap"),
        # The escaped form an older converter wrote to GitLab: a task item again (the canonical form
        # cannot keep literal "[ ]" opening a list item, ADF has no way to tell the two apart).
        ("- \\[ \\] todo\n- \\[x\\] done", "- [ ] todo\n- [x] done"),
        # Not task items: GitLab needs "[ ]" / "[x]" first in the item and followed by a space.
        ("- [] empty brackets", "- \\[\\] empty brackets"),
        ("- [y] other letter", "- \\[y\\] other letter"),
        ("- [x]glued", "- \\[x\\]glued"),
        ("- **[ ] bold**", "- **\\[ \\] bold**"),
        ("[ ] not in a list", "\\[ \\] not in a list"),
        ("- item with [ ] inside", "- item with \\[ \\] inside"),
        ("- [ ] [x] only the first is a checkbox", "- [ ] \\[x\\] only the first is a checkbox"),
    ],
)
def test_normalise_task_items(md, canonical):
    assert normalise(md) == canonical
    assert normalise(canonical) == canonical
    assert from_jira_wiki(to_jira_wiki(canonical, SERVER), SERVER) == canonical
    assert from_adf(to_adf(canonical, CLOUD), CLOUD) == canonical


def test_task_lists_become_adf_task_lists():
    doc = to_adf("- [ ] todo\n  - [x] sub-task\n- [x] done\n\nafter", CLOUD)
    _assert_valid_adf(doc)
    assert doc == _doc(
        {
            "type": "taskList",
            "attrs": {"localId": "1"},
            "content": [
                _task_item("todo", local_id="2"),
                {"type": "taskList", "attrs": {"localId": "3"}, "content": [_task_item("sub-task", True, "4")]},
                _task_item("done", True, "5"),
            ],
        },
        {"type": "paragraph", "content": [{"type": "text", "text": "after"}]},
    )


def test_lists_mixing_tasks_and_plain_items_split_into_adf_lists_and_join_again():
    md = "- [ ] task\n- plain\n- [x] task again"
    doc = to_adf(md, CLOUD)
    _assert_valid_adf(doc)
    assert [node["type"] for node in doc["content"]] == ["taskList", "bulletList", "taskList"]
    assert from_adf(doc, CLOUD) == md


@pytest.mark.parametrize(
    "md",
    [
        "1. [ ] numbered task",  # ADF task lists are not numbered
        "> - [ ] quoted task",  # a blockquote cannot hold a taskList
        "- plain\n  - [ ] task under a plain item",  # nor can a listItem
        "- [ ] task\n  - with a plain sub-item",  # nor a taskItem anything but inline content
        "- [ ] task\n  1. with a numbered sub-task",
    ],
)
def test_tasks_adf_task_lists_cannot_hold_are_list_items_opening_with_the_checkbox_text(md):
    doc = to_adf(md, CLOUD)
    _assert_valid_adf(doc)
    assert "taskList" not in str(doc)
    assert from_adf(doc, CLOUD) == md
    assert to_adf(from_adf(doc, CLOUD), CLOUD) == doc


def test_adf_task_lists_from_jira_cloud():
    doc = _doc(
        {
            "type": "taskList",
            "attrs": {"localId": "b1f5a0a2-5a4c-4a2e-9d5f-0c6f1d0e7b11"},
            "content": [
                _task_item("write the fix", True, "6a1c"),
                _task_item("", False, "6a1d"),  # an empty checkbox
                {
                    "type": "taskItem",
                    "attrs": {"localId": "6a1e", "state": "TODO"},
                    "content": [
                        {"type": "text", "text": "ask "},
                        {"type": "mention", "attrs": {"id": CLOUD.to_remote("alice"), "text": "@Alice"}},
                        {"type": "text", "text": " to "},
                        {"type": "text", "text": "review", "marks": [{"type": "strong"}]},
                    ],
                },
                {"type": "taskList", "attrs": {"localId": "6a1f"}, "content": [_task_item("nested", local_id="6a20")]},
            ],
        },
        {"type": "decisionList", "attrs": {"localId": "d"}, "content": [
            {"type": "decisionItem", "attrs": {"localId": "d1", "state": "DECIDED"},
             "content": [{"type": "text", "text": "a decision"}]},
        ]},
    )
    md = from_adf(doc, CLOUD)
    assert md == "- [x] write the fix\n- [ ]\n- [ ] ask @alice to **review**\n  - [ ] nested\n- a decision"
    assert from_adf(to_adf(md, CLOUD), CLOUD) == md


def test_bullet_items_written_with_bracket_text_in_jira_cloud_read_as_tasks():
    para = {"type": "paragraph", "content": [{"type": "text", "text": "[x] shipped"}]}
    item = {"type": "listItem", "content": [para]}
    assert from_adf(_doc({"type": "bulletList", "content": [item]}), CLOUD) == "- [x] shipped"


def test_mapping_mentions_keeps_the_checkboxes():
    md = "- [ ] ask @bob.smith\n- [x] done by @alice\n  - [ ] @c_3 follows up"
    assert mentions.translate(md, {"alice": "alice", "bob.smith": "bsmith"}.get) == (
        "- [ ] ask @bsmith\n- [x] done by @alice\n  - [ ] \\@c\\_3 follows up"
    )


def test_a_gitlab_checklist_survives_jira_and_back_unchanged():
    md = (
        "## Definition of done\n\n"
        "- [x] Code reviewed by @alice\n"
        "- [ ] Tests added\n"
        "  - [x] unit\n"
        "  - [ ] integration\n"
        "- [ ] Docs updated, see [the guide](https://docs.example/guide)\n\n"
        "1. [ ] Deploy to staging\n"
        "2. [ ] Deploy to production"
    )
    assert normalise(md) == md
    for _ in range(3):  # no growth, no escapes creeping in
        md_back = from_jira_wiki(to_jira_wiki(md, SERVER), SERVER)
        assert md_back == md
        md_back = from_adf(to_adf(md, CLOUD), CLOUD)
        assert md_back == md
    assert "\\[" not in md_back
