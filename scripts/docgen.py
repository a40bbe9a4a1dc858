"""Writes the doc tables that are generated from the code, between markers in docs/*.md:

- docs/state-machine.md, `transitions`: one row per Lua script, from the script headers;
- docs/state-machine.md, `script-codes`: each result code, the scripts that return it, and the
  status and reason a client then sees (from the headers, store/codes.py and api/status.py);
- docs/errors.md, `error-reasons`: every ErrorReason value with its status code and comment,
  from the proto (the commented descriptors scripts/gen writes).

    python scripts/docgen.py           rewrite the tables
    python scripts/docgen.py --check   exit 1 when a table is stale (CI)

A table sits between `<!-- generated: NAME by scripts/docgen.py -->` and `<!-- end: NAME -->`.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from google.protobuf import descriptor_pb2
from google.rpc import code_pb2

from jobqueue.v1.error_reason_pb2 import ErrorReason
from jobqueue_server.api.status import code_and_reason
from jobqueue_server.store.codes import Code, error_for
from jobqueue_server.store.lua_header import LuaHeader
from jobqueue_server.store.scripts import headers

ROOT = Path(__file__).resolve().parents[1]
_BLOCK = re.compile(
    r"(<!-- generated: (?P<name>[\w-]+) by scripts/docgen.py -->\n)(?:.*?\n)?(<!-- end: (?P=name) -->)", re.S
)
# FileDescriptorProto field numbers, for source locations: enum_type = 5, value = 2.
_ENUM_TYPE, _ENUM_VALUE = 5, 2


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _key_name(description: str) -> str:
    """`ready list, high    <prefix>:{<queue>}:ready:high` -> `ready:high`."""
    pattern = next((word for word in description.split() if "{<queue>}" in word), "")
    return pattern.split("{<queue>}:", 1)[-1] if pattern else description.split("  ")[0]


def _ordered(scripts: dict[str, LuaHeader]) -> list[LuaHeader]:
    life = [
        "enqueue",
        "promote",
        "lease",
        "extend",
        "ack",
        "fail",
        "requeue",
        "cancel",
        "retry",
        "trim",
        "stats",
    ]
    return sorted(scripts.values(), key=lambda h: life.index(h.name) if h.name in life else len(life))


def transitions() -> str:
    rows = [
        "| Lua file | Transition | Trigger | Keys (`<prefix>:{<queue>}:` left out) | Returns |",
        "|---|---|---|---|---|",
    ]
    for header in _ordered({name: h for name, (h, _) in headers().items()}):
        keys = ", ".join(f"`{_key_name(k)}`" for k in header.keys)
        codes = "; ".join(f"`{code}` {meaning}" for code, meaning in header.codes.items())
        returns = header.returns.removeprefix("Returns ").rstrip(".") + (
            f". Codes: {codes}." if codes else "."
        )
        rows.append(
            f"| `{header.file}` | {_cell(header.transition)} | {_cell(header.trigger)} | {keys} | "
            f"{_cell(returns[0].upper() + returns[1:])} |"
        )
    return "\n".join(rows)


def script_codes() -> str:
    scripts = [h for h, _ in headers().values() if h.codes]
    rows = [
        "| Code | Meaning | Returned by | Status a client sees | ErrorInfo reason |",
        "|---|---|---|---|---|",
    ]
    for code in sorted({c for h in scripts for c in h.codes}, key=lambda c: (c < 0, abs(c))):
        owners = sorted((h for h in scripts if code in h.codes), key=lambda h: h.file)
        meanings = sorted({h.codes[code] for h in owners})
        error = error_for(owners[0], code, "<job id>")
        status, reason = "OK", ""
        if error is not None:
            number, value = code_and_reason(error)
            status, reason = code_pb2.Code.Name(number), f"`{ErrorReason.Name(value)}`"
        rows.append(
            f"| `{code}` ({Code(code).name}) | {'; '.join(meanings)} | "
            f"{', '.join(f'`{h.file}`' for h in owners)} | {status} | {reason} |"
        )
    return "\n".join(rows)


def error_reasons() -> str:
    raw = (resources.files("jobqueue.v1") / "descriptors.binpb").read_bytes()
    files = {f.name: f for f in descriptor_pb2.FileDescriptorSet.FromString(raw).file}
    source = files["jobqueue/v1/error_reason.proto"]
    enum_index = next(i for i, e in enumerate(source.enum_type) if e.name == "ErrorReason")
    comments = {
        tuple(loc.path): loc.leading_comments
        for loc in source.source_code_info.location
        if len(loc.path) == 4 and loc.path[0] == _ENUM_TYPE and loc.path[1] == enum_index
    }
    rows = ["| Reason | Status code | When it is sent, and what a client should do |", "|---|---|---|"]
    for index, value in enumerate(source.enum_type[enum_index].value):
        if value.number == ErrorReason.ERROR_REASON_UNSPECIFIED:
            continue
        comment = " ".join(comments.get((_ENUM_TYPE, enum_index, _ENUM_VALUE, index), "").split())
        code, _, text = comment.partition(". ")
        number = code_pb2.Code.Value(code)
        rows.append(f"| `{value.name}` | {code} ({number}) | {_cell(text)} |")
    return "\n".join(rows)


TABLES: dict[str, Callable[[], str]] = {
    "transitions": transitions,
    "script-codes": script_codes,
    "error-reasons": error_reasons,
}
DOCS = [ROOT / "docs" / "state-machine.md", ROOT / "docs" / "errors.md"]


def render(text: str) -> str:
    return _BLOCK.sub(lambda m: f"{m[1]}{TABLES[m['name']]()}\n{m[3]}", text)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="fail when a generated table is stale")
    check = parser.parse_args().check
    stale = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        names = {m["name"] for m in _BLOCK.finditer(text)}
        if not names:
            print(f"{doc.relative_to(ROOT)}: no generated table found", file=sys.stderr)
            return 1
        rendered = render(text)
        if rendered != text:
            stale.append(doc.relative_to(ROOT))
            if not check:
                doc.write_text(rendered, encoding="utf-8")
    if check and stale:
        print(f"stale generated tables in {', '.join(map(str, stale))}: run scripts/gen", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
