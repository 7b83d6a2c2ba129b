"""The connection every room of the store works through: transactions and small queries."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class StoreBase:
    """What the rooms share; :class:`~.db.Store` opens the connection."""

    _db: sqlite3.Connection
    _depth: int

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction: everything inside commits together or not at all.

        Nested calls join the outer transaction, so a logical change made of several
        store calls is written with ``with store.tx(): ...`` around them.
        """
        if self._depth:
            self._depth += 1
            try:
                yield self._db
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            self._tx_ended(committed=False)
            raise
        else:
            self._db.execute("COMMIT")
            self._tx_ended(committed=True)
        finally:
            self._depth = 0

    def _tx_ended(self, committed: bool) -> None:
        """Called as each outermost transaction ends (``HistoryRecords`` tells its listeners)."""

    def _one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        return self._db.execute(sql, args).fetchone()

    def _all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return self._db.execute(sql, args).fetchall()

    @staticmethod
    def _sets(**values: Any) -> tuple[list[str], list[Any]]:
        sets: list[str] = []
        args: list[Any] = []
        for key, value in values.items():
            if value is not None:
                sets.append(f"{key}=?")
                args.append(value)
        return sets, args
