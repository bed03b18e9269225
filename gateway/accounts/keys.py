"""API keys and the tenants they belong to. Keys are stored as SHA-256 hashes only."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update

from gateway.clock import utc_now
from gateway.errors import BadRequest, NotFound
from gateway.store import Store
from gateway.store.tables import api_keys, tenants

KEY_PREFIX = "spk_"
SHOWN_PREFIX_LENGTH = 12
# Built once: every request runs it, and building a statement costs more than running it.
_LIVE_KEY = select(api_keys).where(
    api_keys.c.key_hash == bindparam("key_hash"), api_keys.c.revoked_at.is_(None)
)


@dataclass(frozen=True)
class ApiKey:
    id: str
    tenant_id: str
    name: str
    prefix: str
    is_admin: bool
    rate_limit_per_minute: int | None
    credits_limit: int | None
    credits_used: int
    created_at: datetime
    revoked_at: datetime | None

    @property
    def out_of_credits(self) -> bool:
        return self.credits_limit is not None and self.credits_used >= self.credits_limit

    @property
    def credits_left(self) -> int | None:
        return None if self.credits_limit is None else max(0, self.credits_limit - self.credits_used)


def hash_key(plaintext: str) -> str:
    # Keys carry 240 random bits, so a fast hash is as safe as a slow one and keeps lookups cheap.
    return hashlib.sha256(plaintext.encode()).hexdigest()


class ApiKeys:
    """Create, list, revoke and authenticate API keys."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(
        self,
        name: str,
        *,
        admin: bool = False,
        credits: int | None = None,
        rate_limit_per_minute: int | None = None,
        tenant_id: str | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key (for a new tenant named ``name`` unless ``tenant_id`` is given) and its plaintext."""
        name = name.strip()
        if not name or len(name) > 200:
            raise BadRequest("a key needs a name of 1 to 200 characters")
        if credits is not None and credits < 0:
            raise BadRequest("credits cannot be negative")
        if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
            raise BadRequest("the rate limit must be at least 1 request per minute")
        plaintext = KEY_PREFIX + secrets.token_urlsafe(30)
        now = utc_now()
        async with self._store.write() as db:
            if tenant_id is None:
                tenant_id = str(uuid.uuid4())
                await db.execute(insert(tenants).values(id=tenant_id, name=name, created_at=now))
            elif (await db.execute(select(tenants.c.id).where(tenants.c.id == tenant_id))).first() is None:
                raise NotFound(f"no tenant {tenant_id}")
            values: dict[str, Any] = {
                "id": str(uuid.uuid4()),
                "tenant_id": tenant_id,
                "name": name,
                "key_hash": hash_key(plaintext),
                "key_prefix": plaintext[:SHOWN_PREFIX_LENGTH],
                "is_admin": admin,
                "rate_limit_per_minute": rate_limit_per_minute,
                "credits_limit": credits,
                "credits_used": 0,
                "created_at": now,
                "revoked_at": None,
            }
            await db.execute(insert(api_keys).values(**values))
        return _api_key(values), plaintext

    async def authenticate(self, plaintext: str) -> ApiKey | None:
        """The live key with this plaintext, or None."""
        async with self._store.read() as db:
            row = (await db.execute(_LIVE_KEY, {"key_hash": hash_key(plaintext)})).first()
        return _api_key(row._mapping) if row else None

    async def get(self, key_id: str) -> ApiKey:
        async with self._store.read() as db:
            row = (await db.execute(select(api_keys).where(api_keys.c.id == key_id))).first()
        if row is None:
            raise NotFound(f"no API key {key_id}")
        return _api_key(row._mapping)

    async def all(self) -> list[ApiKey]:
        async with self._store.read() as db:
            rows = await db.execute(select(api_keys).order_by(api_keys.c.created_at))
            return [_api_key(row._mapping) for row in rows]

    async def find(self, reference: str) -> ApiKey:
        """The key whose id or shown prefix is ``reference``."""
        async with self._store.read() as db:
            rows = (
                await db.execute(
                    select(api_keys).where(
                        or_(api_keys.c.id == reference, api_keys.c.key_prefix == reference)
                    )
                )
            ).all()
        if not rows:
            raise NotFound(f"no API key {reference}")
        if len(rows) > 1:
            raise BadRequest(f"{reference} names several keys: use the key id")
        return _api_key(rows[0]._mapping)

    async def revoke(self, reference: str) -> ApiKey:
        """Revoke the key whose id or shown prefix is ``reference``."""
        key = await self.find(reference)
        async with self._store.write() as db:
            await db.execute(
                update(api_keys)
                .where(api_keys.c.id == key.id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=utc_now())
            )
        return await self.get(key.id)

    async def tenant_exists(self, tenant_id: str) -> bool:
        async with self._store.read() as db:
            found = await db.execute(select(tenants.c.id).where(tenants.c.id == tenant_id))
            return found.first() is not None

    async def count(self) -> int:
        """How many keys were ever created, revoked ones included."""
        async with self._store.read() as db:
            return int((await db.execute(select(func.count()).select_from(api_keys))).scalar_one())


def _api_key(row: Any) -> ApiKey:
    return ApiKey(
        id=row["id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        prefix=row["key_prefix"],
        is_admin=bool(row["is_admin"]),
        rate_limit_per_minute=row["rate_limit_per_minute"],
        credits_limit=row["credits_limit"],
        credits_used=row["credits_used"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )
