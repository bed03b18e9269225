"""Compare-and-set, the one way rows move: a row changes only if it still is as the caller saw it.

State machines (a job's, a batch's, a crawl's status) declare once which moves each status allows,
and move with ``move``; claims (a schedule's due time, a datasource's next crawl, a job's dispatch)
are ``compare_and_set`` on what was read. Two gateways, or a cancel racing the sync, never both win.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import Table, update

from gateway.store import Connection

Status = TypeVar("Status", bound=StrEnum)


@dataclass(frozen=True)
class OneOf:
    """An expected value: the column holds any of these."""

    values: Collection[Any]


@dataclass(frozen=True)
class StateMachine(Generic[Status]):
    """The statuses each status may move to."""

    moves: Mapping[Status, Collection[Status]]

    def allows(self, source: Status, target: Status) -> bool:
        return target in self.moves.get(source, ())

    def sources(self, target: Status) -> list[Status]:
        """Every status that may move to ``target``."""
        return [source for source, targets in self.moves.items() if target in targets]


async def compare_and_set(
    db: Connection, table: Table, row_id: Any, expected: Mapping[str, Any], **values: Any
) -> bool:
    """Set ``values`` on the row if each column named in ``expected`` still holds its value (None:
    NULL; ``OneOf``: any of several); True if it did."""
    conditions = [table.c.id == row_id]
    for name, value in expected.items():
        column = table.c[name]
        if isinstance(value, OneOf):
            conditions.append(column.in_([*value.values]))
        elif value is None or isinstance(value, bool):
            conditions.append(column.is_(value))
        else:
            conditions.append(column == value)
    result = await db.execute(update(table).where(*conditions).values(**values))
    return bool(result.rowcount == 1)


async def move(
    db: Connection,
    table: Table,
    row_id: Any,
    machine: StateMachine[Status],
    target: Status,
    expected: Mapping[str, Any] | None = None,
    **values: Any,
) -> bool:
    """Move the row's ``status`` to ``target`` from any status the machine allows to (and only if
    ``expected`` still holds), with ``values``; True if it moved."""
    conditions = {**(expected or {}), "status": OneOf(machine.sources(target))}
    return await compare_and_set(db, table, row_id, conditions, status=target, **values)
