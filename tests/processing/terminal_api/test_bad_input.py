"""Bad input on the terminal API: every case gets a 4xx with a machine-readable `error` and a
`detail`, and the database is exactly as it was (every row of every table compared)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import pytest

from processing.terminal_api.signing import (
    SIGNATURE_HEADER,
    TERMINAL_HEADER,
    TIMESTAMP_HEADER,
    sign,
)
from tests.factories import authorization_message, database_dump, make_world

AUTHORIZE = "/v1/terminal/authorizations"
MAX_AGE = 300  # Settings.terminal_signature_max_age_seconds default




@dataclass
class Context:
    """What a case needs to build its request: a terminal with one open hold."""

    world: object
    other_world: object
    now: int
    message: dict  # a valid, not yet sent authorization message
    held_id: str  # the transaction id of an open hold

    def completion_path(self, transaction_id: str | None = None) -> str:
        return f"{AUTHORIZE}/{transaction_id or self.held_id}/completion"

    def reversal_path(self, transaction_id: str | None = None) -> str:
        return f"{AUTHORIZE}/{transaction_id or self.held_id}/reversal"


@dataclass
class Request:
    method: str
    path: str
    body: bytes
    headers: dict[str, str]


def signed(ctx: Context, method: str, path: str, body: bytes, *, key: bytes | None = None,
           code: str | None = None, timestamp: int | str | None = None,
           content_type: str = "application/json") -> Request:
    stamp = str(ctx.now if timestamp is None else timestamp)
    return Request(method, path, body, {
        TERMINAL_HEADER: code or ctx.world.terminal_code,
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: sign(key or ctx.world.terminal_key, method=method, path=path, timestamp=stamp, body=body),
        "Content-Type": content_type,
    })


def authorize_with(change: Callable[[dict], object]) -> Callable[[Context], Request]:
    """A signed authorization whose otherwise valid message is changed by ``change``."""
    def build(ctx: Context) -> Request:
        message = dict(ctx.message)
        change(message)
        return signed(ctx, "POST", AUTHORIZE, orjson.dumps(message))
    return build


def authorize_raw(body: bytes, **options) -> Callable[[Context], Request]:
    return lambda ctx: signed(ctx, "POST", AUTHORIZE, body, **options)


def field(name: str, value) -> Callable[[Context], Request]:
    return authorize_with(lambda message: message.__setitem__(name, value))


def without(name: str) -> Callable[[Context], Request]:
    return authorize_with(lambda message: message.pop(name))


def amount_literal(literal: bytes) -> Callable[[Context], Request]:
    """A message whose amount is written as raw JSON text (numbers orjson would not produce)."""
    def build(ctx: Context) -> Request:
        body = orjson.dumps({**ctx.message, "amount_minor": 0}).replace(b'"amount_minor":0', b'"amount_minor":' + literal)
        return signed(ctx, "POST", AUTHORIZE, body)
    return build


def completion(body: dict | bytes, transaction_id: str | None = None) -> Callable[[Context], Request]:
    def build(ctx: Context) -> Request:
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        return signed(ctx, "POST", ctx.completion_path(transaction_id), raw)
    return build


def reversal(body: dict, transaction_id: str | None = None) -> Callable[[Context], Request]:
    return lambda ctx: signed(ctx, "POST", ctx.reversal_path(transaction_id), orjson.dumps(body))


def with_headers(change: Callable[[Context, dict], None]) -> Callable[[Context], Request]:
    """A correctly signed authorization whose headers are then changed."""
    def build(ctx: Context) -> Request:
        request = signed(ctx, "POST", AUTHORIZE, orjson.dumps(ctx.message))
        change(ctx, request.headers)
        return request
    return build


def body_altered_after_signing(ctx: Context) -> Request:
    request = signed(ctx, "POST", AUTHORIZE, orjson.dumps(ctx.message))
    request.body = orjson.dumps({**ctx.message, "amount_minor": 900_000})
    return request


def signed_for_another_path(ctx: Context) -> Request:
    body = orjson.dumps(ctx.message)
    request = signed(ctx, "POST", ctx.reversal_path(), body)
    request.path = AUTHORIZE
    return request


def signed_for_another_method(ctx: Context) -> Request:
    request = signed(ctx, "GET", f"{AUTHORIZE}/{ctx.held_id}", b"")
    request.method = "POST"
    request.path = ctx.reversal_path()
    request.body = b"{}"
    return request


GOOD_COMPLETION = {"amount_minor": 100_000, "volume_ml": 15_267, "product": "diesel"}

# (case id, request builder, expected status, expected error code)
BAD_INPUTS = [
    # -- the body is not JSON
    ("malformed_json", authorize_raw(b'{"terminal_transaction_id": "1",'), 400, "malformed_json"),
    ("not_json", authorize_raw(b"hello"), 400, "malformed_json"),
    ("not_utf8", authorize_raw(b'{"token": "\xff\xfe"}'), 400, "malformed_json"),
    ("integer_of_5000_digits", amount_literal(b"9" * 5000), 400, "malformed_json"),
    ("deeply_nested", authorize_raw(b"[" * 100_000 + b"]" * 100_000), 400, "malformed_json"),
    # -- JSON, but not a message
    ("empty_body", authorize_raw(b""), 422, "invalid_request"),
    ("json_array", authorize_raw(b"[]"), 422, "invalid_request"),
    ("json_null", authorize_raw(b"null"), 422, "invalid_request"),
    ("json_string", authorize_raw(b'"authorize"'), 422, "invalid_request"),
    ("not_json_content_type", lambda ctx: signed(ctx, "POST", AUTHORIZE, orjson.dumps(ctx.message),
                                                  content_type="text/plain"), 422, "invalid_request"),
    # -- missing fields
    ("missing_transaction_id", without("terminal_transaction_id"), 422, "invalid_request"),
    ("missing_token", without("token"), 422, "invalid_request"),
    ("missing_entry_mode", without("entry_mode"), 422, "invalid_request"),
    ("missing_product", without("product"), 422, "invalid_request"),
    ("missing_amount", without("amount_minor"), 422, "invalid_request"),
    # -- amounts
    ("amount_above_1e9", field("amount_minor", 1_000_000_001), 422, "invalid_request"),
    ("amount_1e20", amount_literal(b"100000000000000000000"), 422, "invalid_request"),
    ("amount_400_digits", amount_literal(b"9" * 400), 422, "invalid_request"),
    ("amount_negative", field("amount_minor", -1), 422, "invalid_request"),
    ("amount_large_negative", field("amount_minor", -(10**12)), 422, "invalid_request"),
    ("amount_zero", field("amount_minor", 0), 422, "invalid_request"),
    ("amount_as_string", field("amount_minor", "300000"), 422, "invalid_request"),
    ("amount_as_float", field("amount_minor", 300000.0), 422, "invalid_request"),
    ("amount_with_fraction", field("amount_minor", 3000.5), 422, "invalid_request"),
    ("amount_exponent", amount_literal(b"3e5"), 422, "invalid_request"),
    ("amount_infinite", amount_literal(b"1e400"), 422, "invalid_request"),
    ("amount_nan", amount_literal(b"NaN"), 422, "invalid_request"),
    ("amount_boolean", field("amount_minor", True), 422, "invalid_request"),
    ("amount_null", field("amount_minor", None), 422, "invalid_request"),
    # -- other fields
    ("unknown_product", field("product", "kerosene"), 422, "invalid_request"),
    ("product_in_capitals", field("product", "DIESEL"), 422, "invalid_request"),
    ("extra_field", field("pin", "1234"), 422, "invalid_request"),
    ("extra_field_approved", field("approved", True), 422, "invalid_request"),
    ("transaction_id_path_traversal", field("terminal_transaction_id", "../../etc/passwd"), 422, "invalid_request"),
    ("transaction_id_with_space", field("terminal_transaction_id", "0001 0002"), 422, "invalid_request"),
    ("transaction_id_with_sql", field("terminal_transaction_id", "1';DROP TABLE cards;--"), 422, "invalid_request"),
    ("transaction_id_with_newline", field("terminal_transaction_id", "000451\n"), 422, "invalid_request"),
    ("transaction_id_non_ascii", field("terminal_transaction_id", "ü00451"), 422, "invalid_request"),
    ("transaction_id_arabic_digits", field("terminal_transaction_id", "١٢٣"), 422, "invalid_request"),
    ("transaction_id_empty", field("terminal_transaction_id", ""), 422, "invalid_request"),
    ("transaction_id_too_long", field("terminal_transaction_id", "1" * 41), 422, "invalid_request"),
    ("transaction_id_as_number", field("terminal_transaction_id", 451), 422, "invalid_request"),
    ("entry_mode_unknown", field("entry_mode", "magstripe"), 422, "invalid_request"),
    ("unpredictable_number_not_hex", field("unpredictable_number", "XYZXYZXY"), 422, "invalid_request"),
    ("currency_lowercase", field("currency", "rub"), 422, "invalid_request"),
    ("token_too_long", field("token", "A" * 3000), 422, "invalid_request"),
    ("token_empty", field("token", ""), 422, "invalid_request"),
    ("token_as_object", field("token", {"dpan": "7005901234567898"}), 422, "invalid_request"),
    ("partial_approval_not_boolean", field("partial_approval_allowed", "maybe"), 422, "invalid_request"),
    # -- completion and reversal bodies
    ("completion_malformed_json", completion(b'{"amount_minor": 1'), 400, "malformed_json"),
    ("completion_missing_volume", completion({"amount_minor": 100_000, "product": "diesel"}), 422, "invalid_request"),
    ("completion_negative_amount", completion({**GOOD_COMPLETION, "amount_minor": -100}), 422, "invalid_request"),
    ("completion_negative_volume", completion({**GOOD_COMPLETION, "volume_ml": -1}), 422, "invalid_request"),
    ("completion_amount_as_string", completion({**GOOD_COMPLETION, "amount_minor": "100000"}), 422, "invalid_request"),
    ("completion_volume_as_float", completion({**GOOD_COMPLETION, "volume_ml": 15.267}), 422, "invalid_request"),
    ("completion_huge_amount", completion({**GOOD_COMPLETION, "amount_minor": 10**15}), 422, "invalid_request"),
    ("completion_huge_volume", completion({**GOOD_COMPLETION, "volume_ml": 10**12}), 422, "invalid_request"),
    ("completion_extra_field", completion({**GOOD_COMPLETION, "tip_minor": 5}), 422, "invalid_request"),
    ("completion_unknown_product", completion({**GOOD_COMPLETION, "product": "kerosene"}), 422, "invalid_request"),
    ("completion_path_id_with_space", completion(GOOD_COMPLETION, "a%20b"), 422, "invalid_request"),
    ("completion_path_id_with_quote", completion(GOOD_COMPLETION, "1%27%3B--"), 422, "invalid_request"),
    ("completion_path_id_too_long", completion(GOOD_COMPLETION, "9" * 41), 422, "invalid_request"),
    ("reversal_reason_too_long", reversal({"reason": "x" * 201}), 422, "invalid_request"),
    ("reversal_extra_field", reversal({"reason": "timeout", "amount_minor": 5}), 422, "invalid_request"),
    ("reversal_path_id_non_ascii", reversal({}, "%C3%BC1"), 422, "invalid_request"),
    ("reversal_reason_with_nul", reversal({"reason": "pump\x00fault"}), 422, "invalid_request"),
    ("reversal_reason_with_newline", reversal({"reason": "pump\nfault"}), 422, "invalid_request"),
    ("reversal_reason_not_text", reversal({"reason": ["timeout"]}), 422, "invalid_request"),
    # -- who is sending
    ("unknown_terminal", lambda ctx: signed(ctx, "POST", AUTHORIZE, orjson.dumps(ctx.message),
                                             code="NOSUCHTERMINAL"), 401, "unknown_terminal"),
    ("bad_signature", with_headers(lambda ctx, h: h.__setitem__(SIGNATURE_HEADER, secrets.token_hex(32))),
     401, "bad_signature"),
    ("signature_not_hex", with_headers(lambda ctx, h: h.__setitem__(SIGNATURE_HEADER, "not-a-signature")),
     401, "bad_signature"),
    ("signed_with_another_terminals_key", lambda ctx: signed(ctx, "POST", AUTHORIZE, orjson.dumps(ctx.message),
                                                              key=ctx.other_world.terminal_key), 401, "bad_signature"),
    ("another_terminals_id_with_own_key", lambda ctx: signed(ctx, "POST", AUTHORIZE, orjson.dumps(ctx.message),
                                                              code=ctx.other_world.terminal_code), 401, "bad_signature"),
    ("stale_timestamp", lambda ctx: signed(ctx, "POST", AUTHORIZE, orjson.dumps(ctx.message),
                                            timestamp=ctx.now - MAX_AGE - 1), 401, "stale_timestamp"),
    ("future_timestamp", lambda ctx: signed(ctx, "POST", AUTHORIZE, orjson.dumps(ctx.message),
                                             timestamp=ctx.now + MAX_AGE + 1), 401, "stale_timestamp"),
    ("timestamp_not_a_number", lambda ctx: signed(ctx, "POST", AUTHORIZE, orjson.dumps(ctx.message),
                                                   timestamp="yesterday"), 401, "stale_timestamp"),
    ("timestamp_in_milliseconds", lambda ctx: signed(ctx, "POST", AUTHORIZE, orjson.dumps(ctx.message),
                                                      timestamp=ctx.now * 1000), 401, "stale_timestamp"),
    ("timestamp_superscript_digit", with_headers(lambda ctx, h: h.__setitem__(TIMESTAMP_HEADER, "²".encode("latin-1"))),
     401, "stale_timestamp"),
    ("timestamp_negative", lambda ctx: signed(ctx, "POST", AUTHORIZE, orjson.dumps(ctx.message),
                                               timestamp=-ctx.now), 401, "stale_timestamp"),
    ("terminal_id_with_nul", with_headers(lambda ctx, h: h.__setitem__(TERMINAL_HEADER, b"T\x0000001")),
     401, "unknown_terminal"),
    ("terminal_id_very_long", lambda ctx: signed(ctx, "POST", AUTHORIZE, orjson.dumps(ctx.message),
                                                  code="T" * 5000), 401, "unknown_terminal"),
    ("timestamp_changed_after_signing", with_headers(lambda ctx, h: h.__setitem__(TIMESTAMP_HEADER, str(ctx.now - 1))),
     401, "bad_signature"),
    ("missing_terminal_header", with_headers(lambda ctx, h: h.pop(TERMINAL_HEADER)), 401, "missing_signature"),
    ("missing_timestamp_header", with_headers(lambda ctx, h: h.pop(TIMESTAMP_HEADER)), 401, "missing_signature"),
    ("missing_signature_header", with_headers(lambda ctx, h: h.pop(SIGNATURE_HEADER)), 401, "missing_signature"),
    ("empty_signature_header", with_headers(lambda ctx, h: h.__setitem__(SIGNATURE_HEADER, "")), 401, "missing_signature"),
    ("no_signature_headers", with_headers(lambda ctx, h: [h.pop(name) for name in
                                                          (TERMINAL_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)]),
     401, "missing_signature"),
    ("body_altered_after_signing", body_altered_after_signing, 401, "bad_signature"),
    ("signed_for_another_path", signed_for_another_path, 401, "bad_signature"),
    ("signed_for_another_method", signed_for_another_method, 401, "bad_signature"),
    ("unsigned_completion", lambda ctx: Request("POST", ctx.completion_path(), orjson.dumps(GOOD_COMPLETION),
                                                 {"Content-Type": "application/json"}), 401, "missing_signature"),
    ("unsigned_status", lambda ctx: Request("GET", f"{AUTHORIZE}/{ctx.held_id}", b"", {}), 401, "missing_signature"),
]

BAD_INPUT_COUNT = len(BAD_INPUTS)


def test_the_bad_inputs_are_distinct():
    assert len({case_id for case_id, *_ in BAD_INPUTS}) == BAD_INPUT_COUNT


@pytest.mark.parametrize(("build", "status", "error"), [case[1:] for case in BAD_INPUTS],
                         ids=[case[0] for case in BAD_INPUTS])
async def test_bad_input_is_refused_and_changes_nothing(state, http, clock, build, status, error):
    world = await make_world(state)
    other_world = await make_world(state)
    terminal = world.terminal(http, clock)
    held = authorization_message(world.phone, clock(), amount_minor=200_000)
    assert (await terminal.authorize(**held)).body["approved"] is True
    ctx = Context(world=world, other_world=other_world, now=int(clock().timestamp()),
                  message=authorization_message(world.phone, clock()), held_id=held["terminal_transaction_id"])
    request = build(ctx)
    before = await database_dump(state)

    response = await http.request(request.method, request.path, content=request.body, headers=request.headers)

    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error, body
    assert isinstance(body["detail"], str) and body["detail"], body
    assert response.headers["content-type"].startswith("application/json")
    assert await database_dump(state) == before
    # The message itself was fine: sent properly it is still accepted (nothing was used up).
    if request.path == AUTHORIZE:
        retry = await terminal.authorize(**ctx.message)
        assert retry.status_code == 200 and retry.body["approved"] is True, retry.body


@pytest.mark.parametrize("transaction_id", ["a b", "a%20b", "ü1", "%C3%BC1", "1';--"])
async def test_reference_client_with_a_bad_path_id_gets_invalid_request_not_bad_signature(
        state, http, clock, transaction_id):
    """The host checks the signature over the path as sent, so the refusal names the real problem."""
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    before = await database_dump(state)

    reply = await terminal.complete(transaction_id, amount_minor=100_000, volume_ml=15_267, product="diesel")

    assert reply.status_code == 422, reply.body
    assert reply.body["error"] == "invalid_request"
    assert await database_dump(state) == before
