"""The header every Lua script opens with, read as data: one source for the store's checks,
the tests and the transition table in docs/state-machine.md.

    --[[
      Ack: completes leased jobs whose lease token is still current.

      Transition: ACTIVE -> COMPLETED
      Trigger: Ack, unary or on the Lease stream

      KEYS[1] active zset         <prefix>:{<queue>}:active
      ARGV[1] now ms, or "" to use the Redis clock

      Returns one code per job.
      Codes: 1 completed; -1 job not found; -2 lease token not current
    ]]

The file is named `<name>-<number of KEYS>.lua`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FILE_NAME = re.compile(r"(?P<name>[a-z][a-z_]*)-(?P<keys>\d+)\.lua")
_NUMBERED = re.compile(r"(?P<kind>KEYS|ARGV)\[(?P<index>\d+)\]\s+(?P<text>.*)")
_CODE = re.compile(r"(?P<code>-?\d+) (?P<meaning>.+)")


class MalformedHeader(ValueError):
    """A script's header does not follow the format above."""


@dataclass(frozen=True, slots=True)
class LuaHeader:
    file: str
    name: str
    key_count: int
    purpose: str
    transition: str
    trigger: str
    keys: tuple[str, ...]
    args: tuple[str, ...]
    returns: str
    #: The result codes the script may return and what each means (empty: it returns none).
    codes: dict[int, str] = field(default_factory=dict)


def parse(file: str, text: str) -> LuaHeader:
    """Reads the header of the script in `file` (its name) with source `text`."""
    named = _FILE_NAME.fullmatch(file)
    if named is None or not text.startswith("--[[") or "]]" not in text:
        raise MalformedHeader(f"{file}: not <name>-<keys>.lua opening with a --[[ ... ]] header")
    paragraphs = _paragraphs(text[4 : text.index("]]")])
    fields = _labelled(paragraphs)
    numbered = [m for line in _lines(paragraphs) if (m := _NUMBERED.match(line))]
    keys = tuple(m["text"].strip() for m in numbered if m["kind"] == "KEYS")
    header = LuaHeader(
        file=file,
        name=named["name"],
        key_count=int(named["keys"]),
        purpose=" ".join(paragraphs[0]),
        transition=fields.get("Transition", ""),
        trigger=fields.get("Trigger", ""),
        keys=keys,
        args=tuple(m["text"].strip() for m in numbered if m["kind"] == "ARGV"),
        returns=_returns(paragraphs),
        codes=_codes(file, fields.get("Codes", "")),
    )
    if len(keys) != header.key_count:
        raise MalformedHeader(f"{file}: the name says {header.key_count} keys, the header lists {len(keys)}")
    if not header.transition or not header.trigger:
        raise MalformedHeader(f"{file}: the header needs a Transition and a Trigger line")
    return header


def _paragraphs(body: str) -> list[list[str]]:
    """Non-empty lines, stripped, grouped by blank lines. Header lines are indented by two
    spaces; a line indented deeper continues the one above (a long ARGV entry)."""
    paragraphs: list[list[str]] = []
    current: list[str] = []
    for raw in body.splitlines():
        line = raw.strip()
        if not line:
            if current:
                paragraphs.append(current)
            current = []
        elif len(raw) - len(raw.lstrip()) > 2 and current:
            current[-1] += " " + line
        else:
            current.append(line)
    if current:
        paragraphs.append(current)
    return paragraphs


def _returns(paragraphs: list[list[str]]) -> str:
    lines = (line for p in paragraphs if p[0].startswith("Returns") for line in p)
    return " ".join(line for line in lines if not line.startswith("Codes:"))


def _lines(paragraphs: list[list[str]]) -> list[str]:
    return [line for paragraph in paragraphs for line in paragraph]


def _labelled(paragraphs: list[list[str]]) -> dict[str, str]:
    labels = ("Transition", "Trigger", "Codes")
    found: dict[str, str] = {}
    for line in _lines(paragraphs):
        label, sep, value = line.partition(": ")
        if sep and label in labels:
            found[label] = value.strip()
    return found


def _codes(file: str, text: str) -> dict[int, str]:
    codes: dict[int, str] = {}
    for item in filter(None, (part.strip() for part in text.split(";"))):
        match = _CODE.fullmatch(item)
        if match is None:
            raise MalformedHeader(f"{file}: cannot read the code {item!r}")
        codes[int(match["code"])] = match["meaning"]
    return codes
