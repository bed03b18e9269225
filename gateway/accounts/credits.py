"""Credits: what an API key may spend, and what it has spent.

Each function takes the caller's connection, so a charge lands in the same transaction as the work
it pays for (an item stored, a batch held, a batch settled) or not at all.
"""

from __future__ import annotations

from sqlalchemy import select, update

from gateway.store import Connection
from gateway.store.tables import api_keys


async def charge_credits(db: Connection, key_id: str, credits: int) -> None:
    """Count ``credits`` as spent by the key (a negative number gives them back)."""
    if credits:
        await db.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id)
            .values(credits_used=api_keys.c.credits_used + credits)
        )


async def hold_credits(db: Connection, key_id: str, credits: int) -> bool:
    """Spend ``credits`` now if the key has that many left; False (and nothing spent) if not."""
    held = await db.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.credits_limit - api_keys.c.credits_used >= credits)
        .values(credits_used=api_keys.c.credits_used + credits)
    )
    return held.rowcount == 1


async def credits_spent(db: Connection, key_id: str) -> bool:
    """Whether the key has a limit and has reached it."""
    row = (
        await db.execute(
            select(api_keys.c.credits_limit, api_keys.c.credits_used).where(api_keys.c.id == key_id)
        )
    ).first()
    return row is not None and row.credits_limit is not None and row.credits_used >= row.credits_limit
