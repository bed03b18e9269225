"""The gateway's store: a SQLite file by default (WAL mode), any SQLAlchemy async URL otherwise.

On a SQLite file in WAL mode, reads run on the event loop's own thread through the standard
``sqlite3`` driver: a WAL reader does not wait for writers, and a key lookup costs ~0.1 ms there
against ~1.2 ms through a worker thread (aiosqlite's hops and SQLAlchemy's async adaptation). Reads
that may go through many rows (``scan``) and writes keep the async driver, so neither a long scan
nor a write waiting for SQLite's lock stalls the loop.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVarTuple, overload

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection as SyncConnection
from sqlalchemy import CursorResult, Engine, Executable, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

if TYPE_CHECKING:
    from sqlalchemy.sql.selectable import TypedReturnsRows

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
_PREBUFFERED = {"prebuffer_rows": True}
Columns = TypeVarTuple("Columns")


class Connection(Protocol):
    """What queries need of a connection: a write transaction's, or a read's."""

    @overload
    async def execute(  # type: ignore[overload-overlap]
        self, statement: TypedReturnsRows[*Columns], parameters: Any = None
    ) -> CursorResult[*Columns]: ...

    @overload
    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]: ...


class InlineReadConnection:
    """A read connection whose queries run on the calling thread (SQLite under WAL never blocks a
    reader), behind the same awaitable ``execute`` as an async connection."""

    def __init__(self, connection: SyncConnection) -> None:
        self._connection = connection

    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[*tuple[Any, ...]]:
        # Fetched whole, as the async driver's results are: one used after its block holds nothing.
        return self._connection.execute(statement, parameters, execution_options=_PREBUFFERED)


class Store:
    """Owns the engine; hands out read connections and write transactions."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        options: dict[str, Any] = {}
        if self.is_sqlite:
            options["connect_args"] = {"timeout": 30}
            if self.url.database:
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        self._inline_reader: Engine | None = None
        if self.is_sqlite:
            _take_over_sqlite_transactions(self.engine)
            if self.url.database not in (None, "", ":memory:"):
                self._inline_reader = _sqlite_reader(self.url.set(drivername="sqlite+pysqlite"))
        self._reader = self.engine.execution_options(read_only=True)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Connection]:
        """A connection for queries that write nothing: one snapshot of the store for the block."""
        if self._inline_reader is not None:
            with self._inline_reader.connect() as inline:
                yield InlineReadConnection(inline)
            return
        async with self._reader.connect() as connection:
            yield connection

    @asynccontextmanager
    async def scan(self) -> AsyncIterator[Connection]:
        """A read that may go through many rows (a count or an offset over a job's items): off the
        event loop, so that one tenant's long read never holds up the others'."""
        async with self._reader.connect() as connection:
            yield connection

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that commits when the block ends and rolls back if it raises."""
        async with self.engine.begin() as connection:
            yield connection

    async def migrate(self) -> None:
        """Bring the schema to the newest version."""
        async with self.engine.begin() as connection:
            await connection.run_sync(_upgrade_to_head)
        if self._inline_reader is not None:
            async with self.engine.connect() as connection:
                mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()
            if str(mode).lower() != "wal":
                # Without WAL a reader waits for writers: reads go through the async driver instead.
                log.warning("the store is in %s mode, not WAL: reads run off the event loop", mode)
                self._inline_reader.dispose()
                self._inline_reader = None

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def close(self) -> None:
        await self.engine.dispose()
        if self._inline_reader is not None:
            self._inline_reader.dispose()


def _sqlite_reader(url: Any) -> Engine:
    # Never waits for a free connection (a request holding one may await something else): the
    # pool grows instead, and keeps 8 connections open between reads. A WAL reader is busy only
    # while another process recovers the file: it waits at most 5 s, on the loop.
    engine = create_engine(
        url,
        connect_args={"timeout": 5, "check_same_thread": False},
        pool_size=8,
        max_overflow=-1,
    )

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # A read that tried to write would fail here rather than take the write lock.
        cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    # One snapshot per read, begun on the driver's connection (SQLAlchemy's begin event costs a
    # statement of its own) and rolled back when the pool takes the connection back.
    @event.listens_for(engine, "checkout")
    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.execute("BEGIN DEFERRED")

    return engine


def _take_over_sqlite_transactions(engine: AsyncEngine) -> None:
    # Writers start with BEGIN IMMEDIATE so they wait for the lock (busy timeout) instead of
    # failing when a read transaction tries to upgrade; readers never block anyone under WAL.
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            "busy_timeout=30000",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: SyncConnection) -> None:
        mode = "DEFERRED" if connection.get_execution_options().get("read_only") else "IMMEDIATE"
        connection.exec_driver_sql(f"BEGIN {mode}")


def _upgrade_to_head(connection: SyncConnection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
