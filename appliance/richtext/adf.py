"""Atlassian Document Format (Jira Cloud REST v3) <-> the canonical document model.

`render` writes ADF that follows Atlassian's node/mark rules: text nodes are never empty, the code
mark is combined with nothing but link, list items start with a paragraph, table cells hold one
paragraph, the first table row is made of tableHeader cells.  `parse` accepts any ADF document:
what the canonical form cannot hold degrades to readable text (see `_inline` and `_block`), and the
result always goes through `canonical_blocks`.

Task list items become taskList/taskItem nodes (localId and state, which the schema requires; the
ids count up through the document, so a document always renders the same).  A taskList holds only
taskItems (inline content) and nested taskLists, and only the document holds a taskList (not a
blockquote, nor a listItem): elsewhere (numbered, quoted, under a plain item, with a plain or numbered
sub-list) a task is a listItem whose text opens with "[ ] " / "[x] ", which reads back as the task.
HTML comments are left out (comments.py).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

from .comments import without_comments
from .model import (
    EM,
    STRIKE,
    STRONG,
    Block,
    CodeBlock,
    Heading,
    Inline,
    ListBlock,
    ListItem,
    Paragraph,
    Quote,
    Rule,
    Table,
    canonical_blocks,
    checkbox,
    flatten_lines,
    item_from_blocks,
    text,
)
from .users import MentionResolver

_MARKS_OUT = {STRONG: "strong", EM: "em", STRIKE: "strike"}
_MARKS_IN = {"strong": STRONG, "em": EM, "strike": STRIKE}


def render(blocks: tuple[Block, ...], mentions: MentionResolver) -> dict[str, Any]:
    """An ADF ``doc`` node for canonical blocks (less their HTML comments)."""
    ids = itertools.count(1)
    content: list[dict[str, Any]] = []
    for block in without_comments(blocks):
        if isinstance(block, ListBlock) and not block.ordered:
            content.extend(_top_level_list(block, mentions, ids))
        else:
            content.append(_out_block(block, mentions))
    return {"type": "doc", "version": 1, "content": content}


def _top_level_list(block: ListBlock, mentions: MentionResolver, ids: Iterator[int]) -> list[dict[str, Any]]:
    """A bullet list as taskLists (each run of items a taskList can hold) and bulletLists (the rest)."""
    nodes = []
    for tasks, run in itertools.groupby(block.items, key=_task_tree):
        items = tuple(run)
        nodes.append(_task_list(items, mentions, ids) if tasks else _out_block(ListBlock(False, items), mentions))
    return nodes


def _task_tree(item: ListItem) -> bool:
    """Whether a taskList can hold `item`: a task whose sub-lists are bullet lists of such items."""
    return item.task is not None and all(
        not sub.ordered and all(_task_tree(i) for i in sub.items) for sub in item.sublists
    )


def _task_list(items: tuple[ListItem, ...], mentions: MentionResolver, ids: Iterator[int]) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    node = {"type": "taskList", "attrs": {"localId": str(next(ids))}, "content": content}
    for item in items:
        attrs = {"localId": str(next(ids)), "state": "DONE" if item.task else "TODO"}
        content.append(_with_content({"type": "taskItem", "attrs": attrs}, _out_inlines(item.body, mentions)))
        content.extend(_task_list(sub.items, mentions, ids) for sub in item.sublists)
    return node


def _out_block(block: Block, mentions: MentionResolver) -> dict[str, Any]:
    if isinstance(block, Paragraph):
        return _para(block.inlines, mentions)
    if isinstance(block, Heading):
        node = {"type": "heading", "attrs": {"level": block.level}}
        return _with_content(node, _out_inlines(block.inlines, mentions))
    if isinstance(block, CodeBlock):
        node: dict[str, Any] = {"type": "codeBlock", "attrs": {"language": block.lang} if block.lang else {}}
        return _with_content(node, [{"type": "text", "text": block.text}] if block.text else [])
    if isinstance(block, ListBlock):
        node = {"type": "orderedList", "attrs": {"order": 1}} if block.ordered else {"type": "bulletList"}
        node["content"] = [
            {
                "type": "listItem",
                "content": [_para(item.inlines, mentions)] + [_out_block(sub, mentions) for sub in item.sublists],
            }
            for item in block.items
        ]
        return node
    if isinstance(block, Quote):
        return {"type": "blockquote", "content": [_out_block(b, mentions) for b in block.blocks]}
    if isinstance(block, Rule):
        return {"type": "rule"}
    if isinstance(block, Table):
        rows = []
        for k, row in enumerate(block.rows):
            cell_type = "tableHeader" if k == 0 else "tableCell"
            rows.append(
                {
                    "type": "tableRow",
                    "content": [
                        {"type": cell_type, "attrs": {}, "content": [_para(cell, mentions)]} for cell in row
                    ],
                }
            )
        return {"type": "table", "attrs": {"isNumberColumnEnabled": False, "layout": "default"}, "content": rows}
    raise TypeError(block)


def _with_content(node: dict[str, Any], content: list[dict[str, Any]]) -> dict[str, Any]:
    if content:
        node["content"] = content
    return node


def _para(inlines: tuple[Inline, ...], mentions: MentionResolver) -> dict[str, Any]:
    return _with_content({"type": "paragraph"}, _out_inlines(inlines, mentions))


def _out_inlines(leaves: tuple[Inline, ...], mentions: MentionResolver) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for k, leaf in enumerate(leaves):
        if leaf.kind == "task":  # outside a taskList, the checkbox is the text that opens the item
            leaf = Inline("text", checkbox(leaf.text == "x") + (" " if k + 1 < len(leaves) else ""))
        if leaf.kind == "br":
            out.append({"type": "hardBreak"})
        elif leaf.kind == "mention":
            remote = mentions.to_remote(leaf.text)
            if remote is None:  # not a user of this Jira: plain text, joined to plain text around it
                if out and out[-1]["type"] == "text" and "marks" not in out[-1]:
                    out[-1]["text"] += "@" + leaf.text
                else:
                    out.append({"type": "text", "text": "@" + leaf.text})
            else:
                out.append(
                    {"type": "mention", "attrs": {"id": remote, "text": "@" + leaf.text, "accessLevel": ""}}
                )
        else:
            marks: list[dict[str, Any]] = []
            if leaf.kind == "code":
                marks.append({"type": "code"})
            else:
                marks.extend({"type": _MARKS_OUT[m]} for m in (STRONG, EM, STRIKE) if m in leaf.marks)
            if leaf.href is not None:
                marks.append({"type": "link", "attrs": {"href": leaf.href}})
            if not marks and out and out[-1]["type"] == "text" and "marks" not in out[-1]:
                out[-1]["text"] += leaf.text
                continue
            node: dict[str, Any] = {"type": "text", "text": leaf.text}
            if marks:
                node["marks"] = marks
            out.append(node)
    return out


# ---------------------------------------------------------------------------------------------------
# ADF -> model


def parse(doc: dict[str, Any] | None, mentions: MentionResolver) -> tuple[Block, ...]:
    """Canonical blocks for an ADF document (None or an empty doc gives no blocks)."""
    if not isinstance(doc, dict):
        return ()
    return canonical_blocks(_blocks(doc.get("content") or [], mentions))


def _blocks(nodes: list[Any], mentions: MentionResolver) -> list[Block]:
    out: list[Block] = []
    pending: list[Inline] = []  # inline nodes found directly at block level
    for node in nodes:
        if not isinstance(node, dict):
            continue
        if _is_inline(node):
            pending.extend(_inline(node, mentions))
            continue
        if pending:
            out.append(Paragraph(tuple(pending)))
            pending = []
        out.extend(_block(node, mentions))
    if pending:
        out.append(Paragraph(tuple(pending)))
    return out


_INLINE_TYPES = {
    "text",
    "hardBreak",
    "mention",
    "emoji",
    "inlineCard",
    "date",
    "status",
    "placeholder",
    "inlineExtension",
    "mediaInline",
}


def _is_inline(node: dict[str, Any]) -> bool:
    return node.get("type") in _INLINE_TYPES


def _block(node: dict[str, Any], mentions: MentionResolver) -> list[Block]:
    t = node.get("type")
    attrs = node.get("attrs") or {}
    content = node.get("content") or []
    if t == "paragraph":
        return [Paragraph(tuple(_inlines(content, mentions)))]
    if t == "heading":
        return [Heading(int(attrs.get("level") or 1), tuple(_inlines(content, mentions)))]
    if t == "codeBlock":
        body = "".join(c.get("text", "") for c in content if isinstance(c, dict))
        return [CodeBlock(str(attrs.get("language") or ""), body)]
    if t in ("bulletList", "orderedList", "decisionList"):
        items = [item_from_blocks(_item_blocks(c, mentions)) for c in content if isinstance(c, dict)]
        return [ListBlock(t == "orderedList", tuple(items))]
    if t == "taskList":
        return [ListBlock(False, _task_items(content, mentions))]
    if t == "blockquote":
        return [Quote(tuple(_blocks(content, mentions)))]
    if t == "rule":
        return [Rule()]
    if t == "table":
        rows = []
        for row in content:
            if isinstance(row, dict):
                rows.append(tuple(_cell(c, mentions) for c in row.get("content") or [] if isinstance(c, dict)))
        return [Table(tuple(rows))]
    if t in ("expand", "nestedExpand") and attrs.get("title"):
        return [Paragraph((text(str(attrs["title"]), {STRONG}),))] + _blocks(content, mentions)
    if t in ("mediaSingle", "mediaGroup", "media"):
        return [Paragraph(tuple(_media(node)))]
    if t in ("blockCard", "embedCard") and attrs.get("url"):
        url = str(attrs["url"])
        return [Paragraph((text(url, href=url),))]
    # panel, layoutSection/Column, extensions with content, unknown containers: keep their content.
    return _blocks(content, mentions)


def _item_blocks(node: dict[str, Any], mentions: MentionResolver) -> list[Block]:
    if node.get("type") in ("taskItem", "decisionItem"):
        return [Paragraph(tuple(_inlines(node.get("content") or [], mentions)))]
    return _blocks(node.get("content") or [], mentions)


def _task_items(nodes: list[Any], mentions: MentionResolver) -> tuple[ListItem, ...]:
    """A taskList's items: a taskItem (or blockTaskItem) is a task, a taskList the sub-list of the item before."""
    items: list[ListItem] = []
    for node in nodes:
        if not isinstance(node, dict):
            continue
        if node.get("type") == "taskList":
            sub = ListBlock(False, _task_items(node.get("content") or [], mentions))
            before = items.pop() if items else ListItem(())
            items.append(ListItem(before.inlines, before.sublists + (sub,)))
        else:
            done = (node.get("attrs") or {}).get("state") == "DONE"
            item = item_from_blocks(_item_blocks(node, mentions))
            items.append(ListItem((Inline("task", "x" if done else " "),) + item.inlines, item.sublists))
    return tuple(items)


def _cell(node: dict[str, Any], mentions: MentionResolver) -> tuple[Inline, ...]:
    lines = [line for b in _blocks(node.get("content") or [], mentions) for line in flatten_lines(b)]
    out: list[Inline] = []
    for line in lines:
        if out:
            out.append(text(" "))
        out.extend(line)
    return tuple(out)


def _media(node: dict[str, Any]) -> list[Inline]:
    names = []
    for media in [node] + [c for c in node.get("content") or [] if isinstance(c, dict)]:
        attrs = media.get("attrs") or {}
        name = attrs.get("alt") or attrs.get("fileName") or attrs.get("url")
        if media.get("type") in ("media", "mediaInline") and name:
            names.append(str(name))
    return [text("[attachment: " + (", ".join(names) or "media") + "]")]


def _inlines(nodes: list[Any], mentions: MentionResolver) -> list[Inline]:
    out: list[Inline] = []
    for node in nodes:
        if isinstance(node, dict):
            if _is_inline(node):
                out.extend(_inline(node, mentions))
            else:  # a block where inline content belongs: keep its text
                for line in (ln for b in _block(node, mentions) for ln in flatten_lines(b)):
                    if out:
                        out.append(Inline("br"))
                    out.extend(line)
    return out


def _inline(node: dict[str, Any], mentions: MentionResolver) -> list[Inline]:
    t = node.get("type")
    attrs = node.get("attrs") or {}
    if t == "text":
        marks: set[str] = set()
        href = None
        code = False
        for mark in node.get("marks") or []:
            mt = mark.get("type") if isinstance(mark, dict) else None
            if mt in _MARKS_IN:
                marks.add(_MARKS_IN[mt])
            elif mt == "code":
                code = True
            elif mt == "link":
                href = str((mark.get("attrs") or {}).get("href") or "") or None
            # underline, textColor, backgroundColor, subsup, annotation: presentation only, dropped.
        s = str(node.get("text") or "")
        return [Inline("code", s, frozenset(), href) if code else Inline("text", s, frozenset(marks), href)]
    if t == "hardBreak":
        return [Inline("br")]
    if t == "mention":
        remote = str(attrs.get("id") or "")
        display = attrs.get("text")
        login = mentions.from_remote(remote, display) if remote else None
        if login is not None:
            return [Inline("mention", login)]
        shown = str(display or remote)
        return [text(shown if shown.startswith("@") else "@" + shown)]
    if t == "emoji":
        return [text(str(attrs.get("text") or attrs.get("shortName") or ""))]
    if t == "inlineCard":
        url = str(attrs.get("url") or "")
        return [text(url, href=url)] if url else []
    if t == "date":
        try:
            stamp = dt.datetime.fromtimestamp(int(attrs.get("timestamp")) / 1000, dt.timezone.utc)
            return [text(stamp.date().isoformat())]
        except (TypeError, ValueError, OverflowError):
            return []
    if t == "status":
        return [text("[" + str(attrs.get("text") or "") + "]")]
    if t == "mediaInline":
        return _media(node)
    if t == "placeholder":
        return [text(str(attrs.get("text") or ""))]
    return [text(str(attrs.get("text") or ""))] if attrs.get("text") else []
