"""`pos-loyalty demo`, scene by scene: the wire (`wire`), the narrator (`narrator`), the morning
at the front (`front`), the day at lane 1 (`day`), rush hour and the evening (`evening`,
`campaign`), head office (`head_office`), and the command that plays them (`command`)."""

from pos_loyalty.cli.demo.command import demo
from pos_loyalty.cli.demo.wire import ApiServer, LaneFollower, TillClient

__all__ = ["ApiServer", "LaneFollower", "TillClient", "demo"]
