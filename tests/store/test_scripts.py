"""The scripts' headers against the code that calls them: key counts, result codes, the lease
reply's fields. The store fails closed: what a script's header does not promise is an error."""

from __future__ import annotations

import re

import pytest
from google.rpc import code_pb2, error_details_pb2

from jobqueue.v1.error_reason_pb2 import ErrorReason
from jobqueue_server.api.status import rpc_status_of
from jobqueue_server.errors import InternalError, JobNotFound, LeaseLost, WrongState
from jobqueue_server.store import Store
from jobqueue_server.store.codes import Code, error_for
from jobqueue_server.store.decode import LEASE_FIELDS, lease_of
from jobqueue_server.store.lua_header import MalformedHeader, parse
from jobqueue_server.store.scripts import headers

HEADERS = {name: header for name, (header, _) in headers().items()}
SOURCES = {name: source for name, (_, source) in headers().items()}
# The scripts that settle or move one job by id answer with codes; the others with counts.
SCRIPTS_WITH_CODES = {"ack", "fail", "extend", "cancel", "retry", "progress"}


def test_every_script_has_a_header_whose_keys_match_its_file_name() -> None:
    assert set(HEADERS) == {
        "enqueue", "lease", "ack", "fail", "extend", "requeue", "promote", "cancel", "retry", "trim", "stats",
        "migrate", "progress", "expire", "schedule_put", "schedule_fire", "schedule_delete",
        "attach", "resolve", "release_dependent", "partitions_grow",
    }  # fmt: skip
    for header in HEADERS.values():
        assert len(header.keys) == header.key_count, header.file
        assert header.transition and header.trigger and header.returns, header.file


def test_a_header_that_lists_fewer_keys_than_its_name_says_is_refused() -> None:
    source = SOURCES["ack"].replace("  KEYS[2] completed zset", "  -- completed zset")

    with pytest.raises(MalformedHeader, match="the name says 7 keys, the header lists 6"):
        parse("ack-7.lua", source)


async def test_a_script_called_with_the_wrong_number_of_keys_is_refused_before_redis(store: Store) -> None:
    keys = store.keys("q")

    with pytest.raises(InternalError, match=r"ack-7\.lua takes 7 keys, 1 given"):
        await store._scripts.ack(keys=[keys.active], args=["", 0])


def test_every_code_a_script_lists_maps_to_an_outcome_and_only_those_scripts_list_codes() -> None:
    expected = {Code.OK: type(None), Code.DEAD: type(None), Code.NOT_FOUND: JobNotFound}
    expected |= {Code.LEASE_LOST: LeaseLost, Code.WRONG_STATE: WrongState}
    for name, header in HEADERS.items():
        assert bool(header.codes) == (name in SCRIPTS_WITH_CODES), header.file
        for code in header.codes:
            assert isinstance(error_for(header, code, "q:x"), expected[Code(code)]), (header.file, code)


@pytest.mark.parametrize("name", sorted(SCRIPTS_WITH_CODES))
def test_a_code_the_script_does_not_list_is_an_internal_error_not_a_success(name: str) -> None:
    header = HEADERS[name]
    unlisted = [code for code in (*Code, 0, 3, -4, 99) if code not in header.codes]

    for code in unlisted:
        error = error_for(header, code, "q:01ARZ3NDEKTSV4RRFFQ69G5FAV")
        assert isinstance(error, InternalError), (name, code)
        status = rpc_status_of(error)
        info = error_details_pb2.ErrorInfo()
        assert status.details[0].Unpack(info)
        assert (status.code, info.reason) == (code_pb2.INTERNAL, ErrorReason.Name(ErrorReason.INTERNAL))


def test_the_lease_replys_fields_are_the_ones_its_header_lists() -> None:
    returns = HEADERS["lease"].returns

    listed = re.search(r"8 entries per job: ulid, lease deadline ms, (?P<fields>[^.]*)\.", returns)

    assert listed is not None, returns
    names = [re.sub(r"\s*\(.*?\)", "", name).strip() for name in listed["fields"].split(",")]
    assert tuple(names) == LEASE_FIELDS
    assert len(LEASE_FIELDS) + 2 == 8  # ulid and deadline, then the fields


def test_a_lease_reply_of_the_wrong_width_is_an_internal_error() -> None:
    with pytest.raises(InternalError, match="not 2 \\+ 8 per job"):
        lease_of("q", "base", "w", [b"0", b"-1"] + [b"x"] * 7)
