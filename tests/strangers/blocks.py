"""The command blocks and code excerpts of docs/workers.md that tests run or compare.

A block marked `<!-- tested: NAME -->` is run as written; one marked
`<!-- excerpt: PATH -->` must appear in that file, `...` standing for lines left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKERS_DOC = ROOT / "docs" / "workers.md"
_MARKED = re.compile(r"<!-- (tested|excerpt): (\S+) -->\n```\w*\n(.*?)\n```", re.DOTALL)
# Lines of a file that an excerpt may skip: blank lines and one-line comments.
_SKIPPABLE = re.compile(r"^(|<!--.*-->|//.*)$")


@dataclass(frozen=True)
class Marked:
    kind: str  # "tested" or "excerpt"
    name: str  # the block's name, or the excerpt's file relative to the repository
    text: str


def marked_blocks(doc: Path = WORKERS_DOC) -> list[Marked]:
    return [Marked(kind, name, text) for kind, name, text in _MARKED.findall(doc.read_text())]


def tested_block(name: str) -> str:
    """The commands of the block marked `tested: name`."""
    found = [block.text for block in marked_blocks() if block.kind == "tested" and block.name == name]
    assert len(found) == 1, f"docs/workers.md should have one block marked tested: {name}"
    return found[0]


def excerpt_found(excerpt: str, source: str) -> bool:
    """Whether each run of excerpt lines between `...` lines is a run of the source's lines,
    in order, comparing stripped lines and skipping the source's blank and comment lines."""
    lines = [line.strip() for line in source.splitlines() if not _SKIPPABLE.match(line.strip())]
    position = 0
    for chunk in re.split(r"\n\s*\.\.\.\s*\n", excerpt):
        wanted = [line.strip() for line in chunk.splitlines() if line.strip()]
        position = _find_run(lines, wanted, position)
        if position < 0:
            return False
    return True


def _find_run(lines: list[str], wanted: list[str], start: int) -> int:
    """The index just past the first run of `wanted` in `lines` from `start`, or -1."""
    for at in range(start, len(lines) - len(wanted) + 1):
        if lines[at : at + len(wanted)] == wanted:
            return at + len(wanted)
    return -1
