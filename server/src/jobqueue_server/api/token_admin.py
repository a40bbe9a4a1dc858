"""CreateToken, ListTokens and RevokeToken: validation, issuing, and the messages."""

from __future__ import annotations

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.api.convert import timestamp
from jobqueue_server.api.validation import duration_ms
from jobqueue_server.auth.policy import Role, pattern_problem
from jobqueue_server.auth.tokens import new_token
from jobqueue_server.errors import FieldViolation, TokenLimitReached, TokenNotFound
from jobqueue_server.store.tokens import TokenRecord, TokenStore, TooManyTokens

_ROLES = {
    svc.TOKEN_ROLE_PRODUCER: Role.PRODUCER,
    svc.TOKEN_ROLE_WORKER: Role.WORKER,
    svc.TOKEN_ROLE_ADMIN: Role.ADMIN,
}
_ROLE_MESSAGES = {role: value for value, role in _ROLES.items()}
MAX_NAME_CHARS = 128
MAX_TTL_MS = 10 * 365 * 24 * 3600 * 1000
_TOKEN_ID_CHARS = frozenset("0123456789abcdef")


def new_record(request: svc.CreateTokenRequest, now_ms: int) -> tuple[str, TokenRecord]:
    """The bearer text and the record of a token the request describes, or FieldViolation."""
    if not 1 <= len(request.name) <= MAX_NAME_CHARS or not request.name.isprintable():
        raise FieldViolation("name", f"must be 1 to {MAX_NAME_CHARS} printable characters")
    role = _ROLES.get(request.role)
    if role is None:
        raise FieldViolation("role", "must be TOKEN_ROLE_PRODUCER, TOKEN_ROLE_WORKER or TOKEN_ROLE_ADMIN")
    problem = pattern_problem(list(request.queues))
    if problem is not None:
        raise FieldViolation("queues", problem)
    expires_ms = None
    if request.HasField("ttl"):
        ttl = duration_ms(request.ttl, "ttl", maximum=MAX_TTL_MS)
        if ttl <= 0:
            raise FieldViolation("ttl", "must be positive (leave it unset for a token that does not expire)")
        expires_ms = now_ms + ttl
    text, token_id, digest = new_token()
    record = TokenRecord(
        token_id, request.name, role.value, tuple(request.queues), now_ms, expires_ms, digest
    )
    return text, record


def info(record: TokenRecord) -> svc.TokenInfo:
    return svc.TokenInfo(
        token_id=record.token_id,
        name=record.name,
        role=_ROLE_MESSAGES[Role(record.role)],
        queues=record.queues,
        create_time=timestamp(record.created_ms),
        expire_time=None if record.expires_ms is None else timestamp(record.expires_ms),
    )


async def add(tokens: TokenStore, record: TokenRecord) -> None:
    try:
        await tokens.add(record)
    except TooManyTokens as error:
        raise TokenLimitReached(str(error)) from error


async def revoke(tokens: TokenStore, token_id: str) -> None:
    if not token_id or len(token_id) > 64 or not set(token_id) <= _TOKEN_ID_CHARS:
        raise FieldViolation("token_id", "must be a token id as ListTokens gives it (hex)")
    if not await tokens.delete(token_id):
        raise TokenNotFound(f"no token has the id {token_id!r}")
