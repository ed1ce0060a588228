"""An uploaded program checked by the store's own compiler, each message put at its rule and key.

The compiler says where (`rules[1] (id "promo").percent: must be between 0 and 100, got 150`);
this finds that rule's `[[rules]]` block in the uploaded text and the line of the key in it, so
the console shows the message beside the line to fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pos_loyalty.hq.bundle import Program
from pos_loyalty.hq.publish import program_from_toml
from pos_loyalty.rules.config import RulesConfigError

PROGRAM_MAX_CHARS = 200_000
_ITEM = re.compile(r'^(rules|tiers)\[(\d+)\](?: \((?:id|name) "(.*?)"\))?\.?(.*)$')
_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\"-]+)\s*\]\]?\s*(#.*)?$")
_TOML_LINE = re.compile(r"\(at line (\d+), column \d+\)")


@dataclass(frozen=True, slots=True)
class Problem:
    where: str  # "rules[1] (id \"promo\")", "points", "" for the whole program
    key: str  # "percent", "reward.coupon.amount_off"
    message: str
    line: int | None  # 1-based line in the uploaded text


@dataclass(frozen=True, slots=True)
class SourceLine:
    number: int
    text: str
    problems: list[Problem]


@dataclass(frozen=True, slots=True)
class CheckedProgram:
    program: Program | None
    problems: list[Problem] = field(default_factory=list)
    listing: list[SourceLine] = field(default_factory=list)


def _blocks(lines: list[str], table: str) -> list[tuple[int, int]]:
    """[start, end) line ranges of each `[[table]]` (or `[table]`) with its sub-tables."""
    out: list[tuple[int, int]] = []
    for number, text in enumerate(lines):
        match = _HEADER.match(text)
        if match is None:
            continue
        name = match.group(1)
        if out and out[-1][1] == -1 and not name.startswith(table + "."):
            out[-1] = (out[-1][0], number)
        if name == table:
            out.append((number, -1))
    if out and out[-1][1] == -1:
        out[-1] = (out[-1][0], len(lines))
    return out


def _key_line(lines: list[str], block: tuple[int, int], key: str) -> int:
    """The line setting the key's first part in the block, else the block's header."""
    first = key.split(".")[0].split("[")[0]
    if first:
        pattern = re.compile(rf"^\s*{re.escape(first)}\s*=")
        for number in range(block[0] + 1, block[1]):
            if pattern.match(lines[number]):
                return number
        for number in range(block[0] + 1, block[1]):  # a sub-table: [rules.reward]
            header = _HEADER.match(lines[number])
            if header and header.group(1).split(".")[1:2] == [first]:
                return number
    return block[0]


def _place(message: str, lines: list[str]) -> Problem:
    location, _, text = message.partition(": ")
    if not text:
        location, text = "", message
    toml = _TOML_LINE.search(message)
    if toml:
        return Problem("", "", message, int(toml.group(1)))
    item = _ITEM.match(location)
    if item:
        table, index, name, key = item.groups()
        where = f"{table}[{index}]" + (f' ("{name}")' if name else "")
        blocks = _blocks(lines, table)
        block = blocks[int(index)] if int(index) < len(blocks) else None
        line = _key_line(lines, block, key) + 1 if block else None
        return Problem(where, key, text, line)
    table, _, key = location.partition(".")
    blocks = _blocks(lines, table) if table else []
    line = _key_line(lines, blocks[0], key) + 1 if blocks else None
    return Problem(table, key, text, line)


def check_program(text: str) -> CheckedProgram:
    """Compile the uploaded TOML exactly as `hq publish` would; place each message."""
    if len(text) > PROGRAM_MAX_CHARS:
        too_long = f"the program is longer than {PROGRAM_MAX_CHARS} characters"
        return CheckedProgram(None, [Problem("", "", too_long, None)])
    lines = text.splitlines()
    try:
        return CheckedProgram(program_from_toml(text, source="upload"))
    except RulesConfigError as exc:
        problems = [_place(message, lines) for message in exc.problems]
    by_line: dict[int, list[Problem]] = {}
    for problem in problems:
        if problem.line is not None:
            by_line.setdefault(problem.line, []).append(problem)
    listing = [
        SourceLine(number, line, by_line.get(number, []))
        for number, line in enumerate(lines, start=1)
    ]
    return CheckedProgram(None, problems, listing)
