"""Waiting on the event loop for a group-commit writer thread (quotes, SQLite sales)."""

from __future__ import annotations

import asyncio
from typing import TypeVar

from pos_loyalty.sales.group_commit import GroupWriter

Item = TypeVar("Item")
Result = TypeVar("Result")


async def written(writer: GroupWriter[Item, Result], item: Item) -> Result:
    """Hand `item` to the writer and wait until its transaction is committed; its result, or
    the error it failed with. A cancelled request does not cancel the write: it still lands."""
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[Result] = loop.create_future()

    def settle(result: Result | BaseException) -> None:
        if outcome.done():
            return  # the request was cancelled meanwhile
        if isinstance(result, BaseException):
            outcome.set_exception(result)
        else:
            outcome.set_result(result)

    def done(result: Result | BaseException) -> None:  # on the writer thread
        loop.call_soon_threadsafe(settle, result)

    writer.submit(item, done)
    return await outcome
