"""Each tenant's webhook signing secret: made on first use, readable and rotatable by its tenant."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.clock import utc_now
from gateway.store import Connection, Store
from gateway.store.tables import webhook_secrets

SECRET_PREFIX = "whsec_"


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of the exact body with the tenant's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


class WebhookSecrets:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def of(self, tenant_id: str) -> str:
        """The tenant's secret, made now if it has none."""
        async with self._store.read() as db:
            found = await secret_of(db, tenant_id)
        if found is not None:
            return found
        try:
            async with self._store.write() as db:
                return await ensure_secret(db, tenant_id)
        except IntegrityError:
            # Another request made it first: that one it is.
            async with self._store.read() as db:
                made = await secret_of(db, tenant_id)
            assert made is not None
            return made

    async def rotate(self, tenant_id: str) -> str:
        """A new secret; the old one signs nothing from now on."""
        fresh = _new_secret()
        async with self._store.write() as db:
            changed = await db.execute(
                update(webhook_secrets)
                .where(webhook_secrets.c.tenant_id == tenant_id)
                .values(secret=fresh, created_at=utc_now())
            )
            if changed.rowcount == 0:
                await db.execute(
                    insert(webhook_secrets).values(tenant_id=tenant_id, secret=fresh, created_at=utc_now())
                )
        return fresh


async def secret_of(db: Connection, tenant_id: str) -> str | None:
    found = await db.execute(select(webhook_secrets.c.secret).where(webhook_secrets.c.tenant_id == tenant_id))
    return found.scalar_one_or_none()


async def ensure_secret(db: Connection, tenant_id: str) -> str:
    """In the caller's transaction: the tenant's secret, inserted if it has none."""
    found = await secret_of(db, tenant_id)
    if found is not None:
        return found
    made = _new_secret()
    await db.execute(insert(webhook_secrets).values(tenant_id=tenant_id, secret=made, created_at=utc_now()))
    return made
