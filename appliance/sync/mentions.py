"""Mentions in rich text, carried from one side's users to the other's.

Rich-text values are Markdown (appliance.richtext); a mention is ``@login``, where ``login`` is the
side's own id for the person as its connector writes it: the GitLab username, the Jira Server /
Data Center username, the Jira Cloud accountId as appliance.richtext.account_login spells it
("557058:<uuid>" is "557058_<uuid>"). `translate` rewrites every mention through a
`resolve` function (the integration's user mapping, appliance.sync.mapping.Mapper): a person with
a counterpart becomes a mention of the counterpart; one without becomes the text "@login", escaped
in Markdown (``\\@login``) so it never reads as a mention of whoever happens to have that login
on the other side.

Degrading is one way only: when the text comes back, the escaped text is text. So that an
unrelated edit on the other side does not turn the original side's mention into text too,
`translate` takes `restore`: logins of the target side, mentioned in its current text and with no
counterpart on the source side; "@login" text of exactly those logins becomes their mention again.
Both steps keep the text canonical (`markdown.finish`), so nothing grows across round trips.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from appliance.richtext import markdown
from appliance.richtext.model import (
    MENTION_RE,
    Block,
    Heading,
    Inline,
    ListBlock,
    ListItem,
    Paragraph,
    Quote,
    Table,
    canonical_blocks,
    is_word,
    tail_is_word,
)

Resolve = Callable[[str], "str | None"]


def mentioned(md: str | None) -> set[str]:
    """The logins mentioned in Markdown `md` (as canonical parsing reads them)."""
    if not md or "@" not in md:
        return set()
    found: set[str] = set()
    _map_blocks(markdown.parse(md), lambda leaves: _collect(leaves, found))
    return found


def translate(md: str | None, resolve: Resolve, restore: Collection[str] = ()) -> str | None:
    """Markdown `md` with each mention mapped by `resolve` (login -> the other side's login, or
    None: no counterpart, the mention becomes escaped text) and the "@login" text of the logins
    in `restore` (compared case-insensitively) turned back into mentions. Text without "@" is
    returned as it is; anything else comes back in canonical form."""
    if not md or "@" not in md:
        return md
    wanted = {login.lower() for login in restore}

    def inlines(leaves: tuple[Inline, ...]) -> tuple[Inline, ...]:
        out: list[Inline] = []
        for leaf in leaves:
            if leaf.kind == "mention":
                target = resolve(leaf.text)
                out.append(Inline("mention", target) if target else Inline("text", "@" + leaf.text))
            elif leaf.kind == "text" and wanted and leaf.href is None and not leaf.marks:
                out.extend(_restored(leaf.text, wanted, out[-1] if out else None))
            else:
                out.append(leaf)
        return tuple(out)

    return markdown.finish(canonical_blocks(_map_blocks(markdown.parse(md), inlines)))


def _collect(leaves: tuple[Inline, ...], found: set[str]) -> tuple[Inline, ...]:
    found.update(leaf.text for leaf in leaves if leaf.kind == "mention")
    return leaves


def _restored(s: str, wanted: set[str], prev: Inline | None) -> list[Inline]:
    """Text `s` split into text and the mentions of `wanted` logins written in it as "@login"."""
    out: list[Inline] = []
    pos = 0
    for m in MENTION_RE.finditer(s):
        word_before = is_word(s[m.start() - 1]) if m.start() else tail_is_word(prev)
        if m.group(1).lower() not in wanted or word_before:
            continue
        if m.start() > pos:
            out.append(Inline("text", s[pos:m.start()]))
        out.append(Inline("mention", m.group(1)))
        pos = m.end()
    if pos < len(s):
        out.append(Inline("text", s[pos:]))
    return out


def _map_blocks(blocks: tuple[Block, ...], fn: Callable[[tuple[Inline, ...]], tuple[Inline, ...]]
                ) -> tuple[Block, ...]:
    """`blocks` with `fn` applied to every run of inline content (code blocks and rules keep theirs)."""
    out: list[Block] = []
    for block in blocks:
        if isinstance(block, Paragraph):
            out.append(Paragraph(fn(block.inlines)))
        elif isinstance(block, Heading):
            out.append(Heading(block.level, fn(block.inlines)))
        elif isinstance(block, ListBlock):
            out.append(_map_list(block, fn))
        elif isinstance(block, Quote):
            out.append(Quote(_map_blocks(block.blocks, fn)))
        elif isinstance(block, Table):
            out.append(Table(tuple(tuple(fn(cell) for cell in row) for row in block.rows)))
        else:
            out.append(block)
    return tuple(out)


def _map_list(block: ListBlock, fn: Callable[[tuple[Inline, ...]], tuple[Inline, ...]]) -> ListBlock:
    return ListBlock(block.ordered, tuple(
        ListItem(fn(item.inlines), tuple(_map_list(sub, fn) for sub in item.sublists)) for item in block.items))
