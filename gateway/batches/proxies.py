"""Which of the operator's proxy pools a batch goes through."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.config import ProxyPool
from gateway.errors import BadRequest


@dataclass(frozen=True)
class ProxyChoice:
    """What a client asked for: a kind of proxy (datacenter, residential, ...) and/or a country."""

    type: str | None = None
    country: str | None = None

    def describe(self) -> str:
        return " in ".join(part for part in (self.type, self.country) if part) or "any proxy"


def pick_pool(pools: Sequence[ProxyPool], choice: ProxyChoice | None) -> ProxyPool | None:
    """The pool for ``choice``: pools that name the country come before those serving any.

    No choice means the operator's default pool, or none (requests go direct).
    """
    if choice is None:
        return next((pool for pool in pools if pool.default), None)
    country = choice.country.upper() if choice.country else None
    matches = [
        pool
        for pool in pools
        if (choice.type is None or pool.type == choice.type)
        and (country is None or not pool.countries or country in pool.countries)
    ]
    if not matches:
        offered = "; ".join(_describe(pool) for pool in pools) or "none"
        raise BadRequest(f"no proxy pool offers {choice.describe()}; the pools configured are: {offered}")
    return sorted(matches, key=lambda pool: not (country and country in pool.countries))[0]


def _describe(pool: ProxyPool) -> str:
    return f"{pool.type} ({', '.join(pool.countries) if pool.countries else 'any country'})"
