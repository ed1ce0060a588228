"""The base of every configuration and payload model: unknown keys are refused, values frozen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A typo in a key (`min_subtota`) is an error naming it, never a silently ignored key."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
