"""Photos in S3-compatible object storage (AWS S3, MinIO, Ceph, Aliyun OSS), through obstore.

The bucket stays private: every photo is streamed to the client by the
site-checked routes after its row was found, never linked to. A single S3
put is atomic (readers see the whole old object or the whole new one), so
there is nothing to stage: :meth:`_Puts.place` puts the sizes under their
final keys inside the row's transaction, after the insert won, and deletes
what it put if a put fails (the transaction is then rolled back). A commit
that fails after the puts leaves objects with no row; they are not deleted
there and then, because a resend of the same photo may be winning the row
at that moment with the same keys: the sweep takes them once past the grace
if still no row has them.

The sweep lists the keys under the prefix a page at a time (S3 lists 1000
at most), asks the database which of that page's photos have rows, and
deletes the others older than the grace (by the object's LastModified).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
import obstore
from obstore.store import S3Store

from server.photo_store import (
    ORPHAN_GRACE_S,
    PAGE,
    HasRows,
    Opened,
    parse_name,
    photo_name,
)
from server.settings import Settings

if TYPE_CHECKING:  # a type of the stubs only
    from obstore.store import ClientConfig

JPEG = {"Content-Type": "image/jpeg"}
# An upload's puts run inside its row's transaction (on SQLite, holding the
# write lock): a bucket that does not answer fails them in seconds, not after
# obstore's default three minutes of retries.
CONNECT_TIMEOUT = timedelta(seconds=5)
TIMEOUT = timedelta(seconds=30)
RETRY_TIMEOUT = timedelta(seconds=15)


def parse_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` as (bucket, prefix without slashes at its ends)."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"empty or s3://bucket/prefix, not {url!r}")
    return parts.netloc, parts.path.strip("/")


class _Puts:
    """One upload's sizes, kept in memory (display and thumbnail: small)
    until the upload that won the row puts them."""

    def __init__(self, s3: S3Store, photo_id: uuid.UUID, variants: Mapping[str, bytes]) -> None:
        self.s3 = s3
        self.objects = {photo_name(photo_id, v): data for v, data in variants.items()}

    async def place(self) -> None:
        done: list[str] = []
        try:
            for name, data in self.objects.items():
                await obstore.put_async(self.s3, name, data, attributes=JPEG)
                done.append(name)
        except BaseException:
            # Still inside the transaction (the row's id is held): no other
            # upload of this photo can have put these keys meanwhile.
            with anyio.CancelScope(shield=True):
                await _delete(self.s3, done)
            raise
        finally:
            self.objects = {}

    async def drop(self) -> None:
        self.objects = {}


async def _delete(s3: S3Store, names: list[str]) -> None:
    if names:
        await obstore.delete_async(s3, names)


async def _chunks(stream: Any) -> AsyncIterator[bytes]:
    async for chunk in stream:
        yield bytes(chunk)


class S3PhotoStore:
    """Photos as objects under ``prefix`` in ``bucket``; names as on disk."""

    def __init__(
        self,
        url: str,
        *,
        started: float | None = None,
        clock: Callable[[], float] = time.time,
        **config: Any,
    ) -> None:
        self.bucket, self.prefix = parse_url(url)
        self.where = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        endpoint = config.get("endpoint") or ""
        options: ClientConfig = {"connect_timeout": CONNECT_TIMEOUT, "timeout": TIMEOUT}
        if endpoint.startswith("http://"):  # only when the endpoint says so (tests)
            options["allow_http"] = True
        given = {k: v for k, v in config.items() if v}
        self.s3 = S3Store(
            self.bucket,
            prefix=self.prefix or None,
            client_options=options,
            retry_config={"max_retries": 3, "retry_timeout": RETRY_TIMEOUT},
            **given,
        )
        # The sweep's time (tests move it on instead of waiting out the grace).
        self.clock = clock
        self.started = clock() if started is None else started

    @classmethod
    def from_settings(cls, settings: Settings) -> S3PhotoStore:
        return cls(
            settings.photo_store,
            endpoint=settings.s3_endpoint,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
        )

    async def prepare(self, photo_id: uuid.UUID, variants: Mapping[str, bytes]) -> _Puts:
        return _Puts(self.s3, photo_id, variants)

    async def open(self, photo_id: uuid.UUID, variant: str) -> Opened | None:
        try:
            result = await obstore.get_async(self.s3, photo_name(photo_id, variant))
        except FileNotFoundError:
            return None
        return Opened(size=result.meta["size"], chunks=_chunks(result.stream()))

    async def sweep(
        self, has_rows: HasRows, min_age_s: float = ORPHAN_GRACE_S, *, before_start: bool = False
    ) -> int:
        cutoff = self.clock() - min_age_s
        if before_start:
            cutoff = min(cutoff, self.started)
        removed = 0
        async for page in obstore.list(self.s3, chunk_size=PAGE):
            stale: list[tuple[str, uuid.UUID]] = []
            for meta in page:
                parsed = parse_name(meta["path"])
                modified = meta["last_modified"].astimezone(UTC)
                if parsed and modified < datetime.fromtimestamp(cutoff, UTC):
                    stale.append((meta["path"], parsed[0]))
            if not stale:
                continue
            known = await has_rows({pid for _, pid in stale})
            gone = [name for name, pid in stale if pid not in known]
            await _delete(self.s3, gone)
            removed += len(gone)
        return removed

    async def pages(self) -> AsyncIterator[list[tuple[str, int]]]:
        # S3 lists keys in UTF-8 binary order: the same order as on disk.
        async for page in obstore.list(self.s3, chunk_size=PAGE):
            yield [(m["path"], m["size"]) for m in page if parse_name(m["path"])]

    async def read(self, name: str) -> bytes | None:
        try:
            result = await obstore.get_async(self.s3, name)
        except FileNotFoundError:
            return None
        return bytes(await result.bytes_async())

    async def put(self, name: str, data: bytes) -> None:
        if parse_name(name) is None:
            raise ValueError(f"not a photo's name: {name!r}")
        await obstore.put_async(self.s3, name, data, attributes=JPEG)

    async def remove(self, names: Collection[str]) -> None:
        names = list(names)
        for start in range(0, len(names), PAGE):
            await _delete(self.s3, names[start : start + PAGE])

    async def size(self, photo_id: uuid.UUID, variant: str) -> int | None:
        try:
            meta = await obstore.head_async(self.s3, photo_name(photo_id, variant))
        except FileNotFoundError:
            return None
        return meta["size"]

    async def is_empty(self) -> bool:
        async for page in self.pages():
            if page:
                return False
        return True
