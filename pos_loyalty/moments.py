"""Moments people type (a command's option, a form's `datetime-local`, a period's start): with an
offset they mean exactly that; without one, the wall-clock time where they are (the store's or
head office's zone), never UTC by accident."""

from __future__ import annotations

from datetime import datetime, tzinfo


def local_moment(text: str, tz: tzinfo) -> datetime:
    """An ISO date or moment, read in `tz` when it names no offset; ValueError if not ISO."""
    moment = datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)
