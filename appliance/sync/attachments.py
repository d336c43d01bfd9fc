"""Attachments of a linked pair, copied across as linked pairs (attachment_links).

Called by the engine for a pair it looks at, when the integration's `attachments.enabled`.
Each attachment not yet paired is streamed from its side to the other (never held whole in
memory: the connector's download generator feeds the upload) when its size is within
`attachments.max_bytes`, and the pair is recorded with the content's SHA-256. Recognising our
own copies: an uploaded copy is paired in the same step, so it is never copied back; after a
crash between the upload and that record, the unpaired file on the other side with the same
size and (sanitised) name is taken as the copy instead of uploading again. Larger files are
skipped with one event per file. A file whose size its app does not list (GitLab's uploads that
a person linked in Markdown) is read into a spool first, stopping at the cap; one over it is not
read again until the cap is raised above the one it was reported over.

Deletes: a paired file gone from one side makes the pair 'deleted' (never copied again); with
delete policy "delete" the counterpart is removed too where the app allows (Jira deletes the
attachment; GitLab only unlinks Tandem's own attachment note, and for an upload linked from a
description or a person's note the event says so and what to do by hand).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import re
import tempfile
from collections.abc import AsyncIterator
from typing import IO, TYPE_CHECKING, Any

from appliance.connectors.base import (SPOOL_BYTES, AttachmentRef, Connector, RemoteAuthError, RemoteItemError,
                                       RemoteNotFound)
from appliance.sync import deletes
from appliance.sync.mapping import OTHER, SIDE_NAME
from appliance.sync.store import Event, Link

if TYPE_CHECKING:
    from appliance.sync.engine import Engine

log = logging.getLogger(__name__)


def _name(filename: str) -> str:
    """File names as apps store them ("my file.txt" may come back as "my_file.txt")."""
    return re.sub(r"[^A-Za-z0-9.\-]", "_", filename).lower()


async def sync_attachments(engine: Engine, link: Link) -> int:
    """Copy the pair's unpaired attachments across; returns how many were uploaded."""
    options = engine.spec.attachments
    if not options.enabled:
        return 0
    refs: dict[str, list[AttachmentRef]] = {}
    for side in ("a", "b"):
        s = engine._side_map[side]
        item = await engine._call(side, lambda c, s=s, side=side: c.get_item(
            s.container, link.item_id(side), comments=False, attachments=True))
        refs[side] = item.attachments or []
    pairs = await engine.store.attachment_links(link)
    paired = {"a": {p["a_id"] for p in pairs}, "b": {p["b_id"] for p in pairs}}
    await _deletes(engine, link, refs, [p for p in pairs if p["state"] == "active"])
    skipped = await engine.store.skipped_attachments(link)
    uploaded = 0
    for side in ("a", "b"):
        other = OTHER[side]
        target = engine._side_map[other]
        source = engine._side_map[side].connector
        unpaired = [r for r in refs[other] if r.id not in paired[other]]
        for ref in refs[side]:
            if ref.id in paired[side]:
                continue
            with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
                digest, sha = hashlib.sha256(), ""
                spooled = ref.size is None
                if spooled:
                    if skipped.get(f"{side}:{ref.id}", 0) >= options.max_bytes:
                        continue        # read before and over a limit at least this one's
                    size = await _read_capped(source, ref, spool, digest, options.max_bytes)
                    if size is None:
                        await _skipped(engine, link, side, ref, f"is larger than the limit of {options.max_bytes}")
                        continue
                    ref = dataclasses.replace(ref, size=size)
                elif ref.size > options.max_bytes:
                    if f"{side}:{ref.id}" not in skipped:
                        await _skipped(engine, link, side, ref,
                                       f"is {ref.size} bytes, over the limit of {options.max_bytes}")
                    continue
                twin = next((r for r in unpaired if r.size == ref.size and _name(r.filename) == _name(ref.filename)),
                            None)
                if twin is not None:
                    unpaired.remove(twin)
                    detail = f"{ref.filename!r} paired with the copy already there"
                else:
                    twin = await engine._call(other, lambda c, ref=ref: c.upload_attachment(
                        target.container, link.item_id(other), ref.filename,
                        _replay(spool) if spooled else _hashed(source, ref, digest), ref.size, ref.mime_type))
                    if engine.fault:
                        engine.fault("attachment_uploaded")
                    uploaded += 1
                    sha = digest.hexdigest()
                    detail = f"{ref.filename!r} ({ref.size} bytes) copied"
            paired[side].add(ref.id)
            paired[other].add(twin.id)
            ids = {side: ref.id, other: twin.id}
            await engine.store.add_attachment_link(
                link, ids["a"], ids["b"], sha, ref.size, ref.filename, engine.run_id,
                Event("attachment", f"{side}_to_{other}", link.a_key if side == "a" else link.b_key, (), detail))
    return uploaded


async def _skipped(engine: Engine, link: Link, side: str, ref: AttachmentRef, why: str) -> None:
    """One event for a file over the size cap; the detail's first word and last number are
    what Store.skipped_attachments reads back."""
    await engine.store.event(engine.run_id, link.id, Event(
        "attachment_skipped", f"{side}_to_{OTHER[side]}", link.a_key if side == "a" else link.b_key, (),
        f"{side}:{ref.id} {ref.filename!r} {why}"))


async def _read_capped(source: Connector, ref: AttachmentRef, spool: IO[bytes], digest: Any,
                       limit: int) -> int | None:
    """Download a file whose size the app does not list into `spool` (hashing it): its size, or
    None as soon as it passes `limit` (the download is closed there, not read to its end)."""
    size = 0
    async with contextlib.aclosing(source.download_attachment(ref)) as chunks:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                return None
            digest.update(chunk)
            spool.write(chunk)
    return size


async def _replay(spool: IO[bytes]) -> AsyncIterator[bytes]:
    spool.seek(0)
    while block := spool.read(64 * 1024):
        yield block


async def _hashed(source: Connector, ref: AttachmentRef, digest: Any) -> AsyncIterator[bytes]:
    """The file streamed from its app to the other, hashed on the way (never held whole)."""
    async for chunk in source.download_attachment(ref):
        digest.update(chunk)
        yield chunk


async def _deletes(engine: Engine, link: Link, refs: dict[str, list[AttachmentRef]], pairs: list) -> None:
    """Pairs whose file is gone from a side: the delete policy says what happens to the other."""
    present = {side: {r.id: r for r in refs[side]} for side in ("a", "b")}
    for pair in pairs:
        here = {side: present[side].get(pair[f"{side}_id"]) for side in ("a", "b")}
        if here["a"] is not None and here["b"] is not None:
            continue
        if here["a"] is None and here["b"] is None:
            await engine.store.attachment_pair_deleted(link, pair["id"], engine.run_id, Event(
                "attachment_deleted", "", link.a_key, (), f"{pair['filename']!r} deleted on both sides"))
            continue
        gone = "a" if here["a"] is None else "b"
        keep = OTHER[gone]
        detail = f"{pair['filename']!r} deleted on {SIDE_NAME[gone]}; "
        if engine.spec.delete_policy == "delete":
            s = engine._side_map[keep]
            try:
                await engine._call(keep, lambda c, s=s, ref=here[keep]: c.delete_attachment(
                    s.container, link.item_id(keep), ref))
                detail += f"removed on {SIDE_NAME[keep]} too (delete policy)"
            except RemoteNotFound:
                detail += f"gone on {SIDE_NAME[keep]} too"
            except RemoteItemError as exc:      # NotSupported or another refusal for good
                detail += f"still on {SIDE_NAME[keep]}: {exc.message}"
            except RemoteAuthError as exc:
                if not deletes.not_permitted(exc):
                    raise
                detail += f"still on {SIDE_NAME[keep]}: the account may not delete it ({exc.message})"
        else:
            detail += f"kept on {SIDE_NAME[keep]} (delete policy {engine.spec.delete_policy})"
        await engine.store.attachment_pair_deleted(link, pair["id"], engine.run_id, Event(
            "attachment_deleted", f"{gone}_to_{keep}", link.a_key if gone == "a" else link.b_key, (), detail))
