"""Comments of a linked pair, kept as linked pairs (comment_links): copies, edits and deletes.

Called by the engine for a pair it looks at, when the integration's `comments.enabled`.

Copies: each comment not yet paired (and not one of Tandem's own copies: those carry a marker of
this pair's comment intents) is copied to the other side with an intent + marker first, so a
crash between the create and its record is healed by finding the marker instead of copying
again. The copy names the author in a first line ("*Bob wrote:*"). Mentions in a text going to
the other side are mapped to that side's users (Mapper.rich_text), and the two texts agree when
A's text so mapped is B's.

Edits: a pair keeps the body of each side as last synced (base_a / base_b, as read back from
that side, so a side's own rich-text conversion never reads as an edit). A side whose body
differs from its base was edited: its text goes to the other side (the copy gets the author line
back, the original never gets one) and both bases become the bodies as the apps now hold them,
so Tandem's own edit never bounces back. Edited on both sides: when the texts agree only the
bases move; else the conflict policy decides (newest: the later comment edit wins; hold: a
conflict "comment <A id>" waits in the inbox, a person's answer is applied on the next look,
and it leaves the inbox by itself if people make the two agree).
An app that refuses the edit for good (GitLab lets only a note's author edit it; a Jira account
without "Edit All Comments") is reported once in the item's events and the pair accepts the
difference.

Deletes: a comment gone from one side makes the pair 'deleted'; with delete policy "delete" (and
comments syncing in that direction) its counterpart is deleted too, otherwise it stays (an event
says so). A deleted pair is never copied again.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from appliance.connectors.base import Comment, Item, RemoteAuthError, RemoteItemError, RemoteNotFound
from appliance.sync import deletes
from appliance.sync.mapping import OTHER, SIDE_NAME
from appliance.sync.spec import IntegrationSpec
from appliance.sync.store import Event, Intent, Link

if TYPE_CHECKING:
    import asyncpg

    from appliance.sync.engine import Engine

log = logging.getLogger(__name__)

# The author line of a copy as it reads back from either app (Markdown emphasis survives the
# trip through wiki markup / ADF as * or _ , single or double).
AUTHOR_LINE = re.compile(r"\A[*_]{1,2}([^\n]*?) wrote:[*_]{1,2}[ \t]*\n+")


def author_line(name: str) -> str:
    return f"*{name} wrote:*\n\n"


def text_of(body: str, is_copy: bool) -> str:
    """The comment's own text: a copy's body without its author line."""
    return AUTHOR_LINE.sub("", body, count=1) if is_copy else body


def fresh_copies(spec: IntegrationSpec, side: str, item: Item) -> list[tuple[str, str]]:
    """(side, id) of the comments sync_comments will copy, in its order, for a pair made now of
    `item` and a counterpart created just now (no comments); [] when they are not known yet.
    The engine makes their intents together with the pair."""
    options = spec.comments
    if not options.enabled or item.comments is None or options.direction not in ("both", f"{side}_to_{OTHER[side]}"):
        return []
    return [(side, c.id) for c in item.comments if not c.system]


async def sync_comments(engine: Engine, link: Link, known: Mapping[str, list[Comment] | None] | None = None,
                        *, fresh: bool = False, intents: Sequence[Intent] = ()) -> int:
    """Copy, edit and delete the pair's comments (module docstring); returns how many were copied.

    `known` gives a side's comments when the caller already holds all of them (a poll page's, or
    [] for a counterpart created in this same look): that side is not listed again. Such comments
    may lack markers (Jira's search omits comment properties), and a copy whose record a crash
    lost is recognised by its marker alone: while a comment intent of this pair is pending, both
    sides are listed. `fresh`: the pair was made in this look, so it has no comment pairs, and
    no comment intents but `intents` (those of fresh_copies, made with the pair)."""
    options = engine.spec.comments
    if not options.enabled:
        return 0
    pairs, ours = ([], {}) if fresh else await engine.store.comment_state(link)
    held = {} if "pending" in ours.values() else dict(known or {})
    lists: dict[str, list[Comment]] = {}
    for side in ("a", "b"):
        s = engine._side_map[side]
        comments = held.get(side)
        if comments is None:
            comments = await engine._call(side, lambda c, s=s, side=side: c.list_comments(s.container,
                                                                                        link.item_id(side)))
        lists[side] = [c for c in comments if not c.system]
    by_id = {side: {c.id: c for c in lists[side]} for side in ("a", "b")}
    resolutions = await engine.store.comment_resolutions(link) if pairs else {}
    for pair in pairs:
        resolution = resolutions.get(f"comment {pair['a_id']}")
        if pair["state"] == "active":
            await _sync_pair(engine, link, pair, by_id["a"].get(pair["a_id"]), by_id["b"].get(pair["b_id"]),
                             resolution)
        elif resolution is not None:        # resolved after the comment was deleted: nothing to apply
            await engine.store.resolution_applied(resolution["id"])
    linked = {"a": {p["a_id"] for p in pairs}, "b": {p["b_id"] for p in pairs}}
    todo = [(side, comment) for side in ("a", "b") if options.direction in ("both", f"{side}_to_{OTHER[side]}")
            for comment in lists[side]
            if comment.id not in linked[side] and not (comment.marker and comment.marker in ours)]
    return await _copy(engine, link, todo, lists, intents) if todo else 0


def has_news(side: str, comments: Sequence[Comment], pairs: Sequence[asyncpg.Record], ours: Mapping[str, str]
             ) -> bool:
    """Whether `side`'s comments hold anything sync_comments would act on, by its rules: a
    comment neither paired nor a copy of ours (to copy), a paired one whose body is not its base
    (edited), an active pair whose comment is gone (deleted), or a copy still pending. `pairs`
    and `ours` are Store.comment_state's."""
    if "pending" in ours.values():
        return True
    column = f"{side}_id"
    synced = {p[column]: p for p in pairs}
    present = set()
    for comment in comments:
        if comment.system:
            continue
        pair = synced.get(comment.id)
        if pair is None:
            if not (comment.marker and comment.marker in ours):
                return True
        elif pair["state"] == "active" and comment.body != pair[f"base_{side}"]:
            return True
        present.add(comment.id)
    return any(p["state"] == "active" and p[column] not in present for p in pairs)


async def _copy(engine: Engine, link: Link, todo: list[tuple[str, Comment]], lists: Mapping[str, list[Comment]],
                made_with_pair: Sequence[Intent]) -> int:
    """Copy each (side, comment) of `todo` to the other side, in order; returns how many were
    created. A copy the other app refuses for good (RemoteItemError) does not hold back the
    ones after it: they are copied, then the item fails with the first refusal's reason (its
    retry tries only what is still not copied). The intents of all of them are committed first
    (one statement, or with the pair when `made_with_pair` are theirs), and the pairs recorded
    together after the creates, also those made before a failure (one statement): a crash in
    between leaves intents pending, whose markers the next look finds."""
    by_marker = {side: {c.marker: c for c in lists[side] if c.marker} for side in ("a", "b")}
    sources = [(side, c.id) for side, c in todo]
    if [(i.source_side, i.source_id) for i in made_with_pair] == sources:
        intents = [(i, True) for i in made_with_pair]
    else:
        intents = await engine.store.intents_for("comment", sources, link.id)
    made = 0
    pairs = []
    refused: list[tuple[str, RemoteItemError]] = []     # (the side that refused, why)
    try:
        for (side, comment), (intent, fresh) in zip(todo, intents):
            other = OTHER[side]
            target = engine._side_map[other]
            copy = None if fresh else by_marker[other].get(intent.marker)
            if copy is None:
                body = author_line(comment.author.name) + (engine.mapper.rich_text(comment.body, side) or "")
                try:
                    copy = await engine._call(other, lambda c, i=intent, t=target, o=other, b=body: c.add_comment(
                        t.container, link.item_id(o), b, i.marker))
                except RemoteNotFound:
                    raise
                except RemoteItemError as exc:
                    # This comment only (too long for the other app, say): the ones after it
                    # are copied, and the item fails with this reason once they are.
                    refused.append((other, exc))
                    continue
                if engine.fault:
                    engine.fault("comment_created")
                made += 1
            ids = {side: comment.id, other: copy.id}
            bodies = {side: comment.body, other: copy.body}
            pairs.append((intent, ids["a"], ids["b"], bodies["a"], bodies["b"],
                          Event("comment", f"{side}_to_{other}", _key(link, side), (),
                                f"comment by {comment.author.name} copied")))
    finally:
        await engine.store.add_comment_links(link, pairs, engine.run_id)
    if refused:
        side, first = refused[0]
        error = RemoteItemError(f"{len(refused)} comment(s) not copied: {first.message}", status=first.status,
                                endpoint=first.endpoint)
        error.side = side
        raise error
    return made


def _original_author(pair: asyncpg.Record, kept: Comment, side: str) -> str:
    """Who wrote the original of a pair of which only `kept` (on `side`) is left."""
    if pair["source_side"] == side or not pair["source_side"]:
        return kept.author.name
    line = AUTHOR_LINE.match(kept.body)
    return line.group(1) if line else "someone"


def _key(link: Link, side: str) -> str:
    return link.a_key if side == "a" else link.b_key


async def _sync_pair(engine: Engine, link: Link, pair: asyncpg.Record, a: Comment | None, b: Comment | None,
                     resolution: asyncpg.Record | None) -> None:
    current = {"a": a, "b": b}
    if a is None or b is None:
        await _deleted(engine, link, pair, current)
        if resolution is not None:
            await engine.store.resolution_applied(resolution["id"])
        return
    copy_side = OTHER[pair["source_side"]] if pair["source_side"] else None
    texts = {s: text_of(current[s].body, s == copy_side) for s in ("a", "b")}
    field = f"comment {pair['a_id']}"
    if resolution is not None:
        winner = "a" if resolution["resolution"] == "value" else resolution["resolution"]
        if resolution["resolution"] == "value":
            value = resolution["resolved_value"]
            texts["a"] = str(json.loads(value) if isinstance(value, str) else value)
        await _write(engine, link, pair, current, texts, winner, f"conflict resolved for {SIDE_NAME[winner]}",
                     also_winner=resolution["resolution"] == "value")
        await engine.store.resolution_applied(resolution["id"])
        return
    changed = [s for s in ("a", "b") if current[s].body != pair[f"base_{s}"]]
    if not changed:
        return
    flows = engine.spec.comments.direction
    if engine.mapper.rich_text(texts["a"], "a", texts["b"]) == texts["b"]:
        await engine.store.save_comment_pair(pair["id"], a.body, b.body, "active", engine.run_id, link, None)
        await engine.store.close_conflict(link, field)
        return
    if len(changed) == 1:
        source = changed[0]
        if flows not in ("both", f"{source}_to_{OTHER[source]}"):
            await engine.store.save_comment_pair(pair["id"], a.body, b.body, "active", engine.run_id, link, None)
            return
        await _write(engine, link, pair, current, texts, source, f"edited on {SIDE_NAME[source]}")
        return
    policy = engine.spec.conflict_policy
    winner = {"a_wins": "a", "b_wins": "b"}.get(policy)
    if policy == "newest":
        winner = "b" if b.updated_at > a.updated_at else "a"
    if winner is None:
        base = text_of(pair["base_a"], copy_side == "a")
        await engine.store.hold_comment_conflict(
            link, field, texts["a"], texts["b"], base, engine.run_id,
            Event("conflict", "", link.a_key, [field], "comment edited on both sides; held for a person"))
        return
    await _write(engine, link, pair, current, texts, winner, f"edited on both sides; policy {policy}")


async def _write(engine: Engine, link: Link, pair: asyncpg.Record, current: dict[str, Comment],
                 texts: dict[str, str], source: str, why: str, *, also_winner: bool = False) -> None:
    """Give the other side `source`'s text (and `source` too when `also_winner`: a person's own
    value), then record both bodies as the new bases."""
    other = OTHER[source]
    copy_side = OTHER[pair["source_side"]] if pair["source_side"] else None
    original = current[OTHER[copy_side]] if copy_side else current[source]
    bodies = {s: current[s].body for s in ("a", "b")}
    outcomes = []
    targets = [other, source] if also_winner else [other]
    for to in targets:
        text = texts[source] if to == source else engine.mapper.rich_text(texts[source], source, texts[to]) or ""
        body = author_line(original.author.name) + text if to == copy_side else text
        s = engine._side_map[to]
        comment_id = pair[f"{to}_id"]
        try:
            written = await engine._call(to, lambda c, s=s, to=to, body=body, cid=comment_id: c.update_comment(
                s.container, link.item_id(to), cid, body))
            bodies[to] = written.body
            outcomes.append(f"copied to {SIDE_NAME[to]}")
        except RemoteNotFound:
            bodies[to] = ""
            outcomes.append(f"its counterpart on {SIDE_NAME[to]} is gone")
        except RemoteItemError as exc:
            # The app refused this edit for good (NotSupported: GitLab lets only the author edit a
            # note; Jira: no "Edit All Comments" right): retrying cannot help, so the pair accepts
            # the difference until one side is edited again.
            outcomes.append(f"not copied to {SIDE_NAME[to]}: {exc.message}")
            log.info("integration %s: a comment edit was not copied to side %s: %s", engine.name, SIDE_NAME[to],
                     exc.message, extra=engine.extra)
    await engine.store.save_comment_pair(pair["id"], bodies["a"], bodies["b"], "active", engine.run_id, link,
                                         Event("comment_edited", f"{source}_to_{other}", _key(link, source), (),
                                               f"comment by {original.author.name} {why}; " + ", ".join(outcomes)))
    engine.counts["comment_edits"] += 1


async def _deleted(engine: Engine, link: Link, pair: asyncpg.Record, current: dict[str, Comment | None]) -> None:
    if current["a"] is None and current["b"] is None:
        await engine.store.save_comment_pair(pair["id"], pair["base_a"], pair["base_b"], "deleted", engine.run_id,
                                             link, Event("comment_deleted", "", link.a_key, (),
                                                         "comment deleted on both sides"))
        return
    gone = "a" if current["a"] is None else "b"
    survivor = OTHER[gone]
    kept: Comment = current[survivor]
    detail = f"comment by {_original_author(pair, kept, survivor)} deleted on {SIDE_NAME[gone]}; "
    flows = engine.spec.comments.direction in ("both", f"{gone}_to_{survivor}")
    if engine.spec.delete_policy == "delete" and flows:
        s = engine._side_map[survivor]
        try:
            await engine._call(survivor, lambda c: c.delete_comment(s.container, link.item_id(survivor),
                                                                    kept.id))
            detail += f"deleted on {SIDE_NAME[survivor]} too (delete policy)"
        except RemoteNotFound:
            detail += f"gone on {SIDE_NAME[survivor]} too"
        except RemoteItemError as exc:      # refused for good, as in _write
            detail += f"kept on {SIDE_NAME[survivor]}: {exc.message}"
        except RemoteAuthError as exc:
            if not deletes.not_permitted(exc):
                raise
            detail += f"kept on {SIDE_NAME[survivor]}: the account may not delete it ({exc.message})"
    elif not flows:
        detail += f"kept on {SIDE_NAME[survivor]} (comments sync {engine.spec.comments.direction} only)"
    else:
        detail += f"kept on {SIDE_NAME[survivor]} (delete policy {engine.spec.delete_policy})"
    await engine.store.save_comment_pair(pair["id"], pair["base_a"], pair["base_b"], "deleted", engine.run_id,
                                         link, Event("comment_deleted", f"{gone}_to_{survivor}",
                                                     _key(link, gone), (), detail))
