"""HTML comments, which only Markdown has: the Jira formats' view of a canonical document.

GitLab keeps ``<!-- ... -->`` in a description without showing it (issue templates are full of them),
so the canonical form keeps them (model.py); Jira wiki markup and ADF have nothing like them, so their
renderers start from `without_comments`.  What that drops cannot come back from Jira: for canonical
``n``, ``from_jira_wiki(to_jira_wiki(n))`` is ``n`` less its comments.
"""

from __future__ import annotations

from . import markdown
from .model import Block, Comment, Heading, Inline, ListBlock, ListItem, Paragraph, Quote, Table, canonical_blocks


def without_comments(blocks: tuple[Block, ...]) -> tuple[Block, ...]:
    """Canonical `blocks` less their HTML comments: what Jira wiki markup and ADF can carry.

    The result is what canonical Markdown without the comments reads as (a mark that could end
    against a comment may not end without it: ``*~~a~~*<!-- -->b`` is ``\\*~~a~~\\*b`` without),
    which is what makes the Jira round trips land on exactly that Markdown.
    """
    if not any(_has_comments(b) for b in blocks):
        return blocks
    rest = canonical_blocks([b for b in (_uncommented_block(b) for b in blocks) if b is not None])
    return markdown.parse(markdown.finish(rest))


def _has_comments(block: Block) -> bool:
    if isinstance(block, Comment):
        return True
    if isinstance(block, (Paragraph, Heading)):
        return any(leaf.kind == "comment" for leaf in block.inlines)
    if isinstance(block, ListBlock):
        return any(
            any(leaf.kind == "comment" for leaf in item.inlines) or any(map(_has_comments, item.sublists))
            for item in block.items
        )
    if isinstance(block, Quote):
        return any(map(_has_comments, block.blocks))
    if isinstance(block, Table):
        return any(leaf.kind == "comment" for row in block.rows for cell in row for leaf in cell)
    return False


def _uncommented_block(block: Block) -> Block | None:
    if isinstance(block, Comment):
        return None
    if isinstance(block, Paragraph):
        return Paragraph(_uncommented(block.inlines))
    if isinstance(block, Heading):
        return Heading(block.level, _uncommented(block.inlines))
    if isinstance(block, ListBlock):
        return ListBlock(block.ordered, tuple(_uncommented_item(item) for item in block.items))
    if isinstance(block, Quote):
        return Quote(tuple(b for b in map(_uncommented_block, block.blocks) if b is not None))
    if isinstance(block, Table):
        return Table(tuple(tuple(_uncommented(cell) for cell in row) for row in block.rows))
    return block


def _uncommented_item(item: ListItem) -> ListItem:
    subs = (_uncommented_block(sub) for sub in item.sublists)
    return ListItem(_uncommented(item.inlines), tuple(sub for sub in subs if isinstance(sub, ListBlock)))


def _uncommented(leaves: tuple[Inline, ...]) -> tuple[Inline, ...]:
    """`leaves` less their comments; "a <!-- c --> b" is "a b", not "a  b"."""
    out: list[Inline] = []
    gap = False
    for leaf in leaves:
        if leaf.kind == "comment":
            gap = True
            continue
        if gap and leaf.kind == "text" and out and out[-1].kind == "text" and out[-1].text[-1:].isspace():
            leaf = Inline("text", leaf.text.lstrip(), leaf.marks, leaf.href)
        gap = False
        out.append(leaf)
    return tuple(out)
