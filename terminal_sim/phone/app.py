"""The reference phone client of the driver app: sign in, put a card on the phone, pay.

Everything the host says goes through docs/mobile_api.md. Tokens are made offline from what the
wallet holds (device key, DPAN, counter, clock offset); only signing in, enrolling a card, the
lists and the time sync need the network.

The phone's own clock is a callable (Unix seconds), so a test can give it a phone whose clock
is ten minutes off; tokens are stamped with `server_now()` = that clock + the measured offset.
"""

from __future__ import annotations

import base64
import binascii
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from processing import tokens
from terminal_sim.phone.errors import HostRefused, HostUnreachable, NotEnrolled, NotSignedIn, PhoneError
from terminal_sim.phone.store import Enrollment, Session, Wallet, WalletStore

# Refresh this long before the access token runs out, so a request never races its expiry.
ACCESS_REFRESH_MARGIN_SECONDS = 30
TIME_SAMPLES = 3
# The host's word for an access token past its life (401): refresh and try again once.
_EXPIRED_ACCESS_CODES = frozenset({"token_expired"})
_DEVICE_KEY_LENGTH = 32


@dataclass(frozen=True)
class TimeSync:
    """One clock measurement: offset = server time - phone time, from the fastest round trip."""

    offset_seconds: float
    round_trip_seconds: float
    server_time: float
    token_validity_seconds: int
    allowed_clock_skew_seconds: int


@dataclass(frozen=True)
class ClockCheck:
    """Whether the phone's clock is further off than the host tolerates; true when it is."""

    skewed: bool
    offset_seconds: float | None
    message: str

    def __bool__(self) -> bool:
        return self.skewed


@dataclass(frozen=True)
class ShownToken:
    """A token as the phone shows it: the QR text, the token, and when the host stops taking it."""

    payload: str
    token: tokens.PaymentToken
    card: str
    validity_seconds: int
    expires_at_server: int
    clock_offset_seconds: float

    @property
    def atc(self) -> int:
        return self.token.atc

    @property
    def generated_at(self) -> int:
        return self.token.generated_at

    def seconds_left(self, now_local: float) -> float:
        """Seconds until the host's window ends, with `now_local` read from the phone's clock."""
        return max(0.0, self.expires_at_server - (now_local + self.clock_offset_seconds))


class PhoneApp:
    """One phone: its wallet, its clock and its connection to the host.

    ``http`` may be any httpx.AsyncClient whose base URL is the host (a network client, or one
    bound to the ASGI app in tests); without one, a client for the wallet's server URL is made.
    """

    def __init__(self, store: WalletStore, *, server_url: str | None = None,
                 http: httpx.AsyncClient | None = None, clock: Callable[[], float] = time.time,
                 timeout_seconds: float = 10.0):
        self.store = store
        self.wallet: Wallet = store.load()
        self._server_url = server_url.rstrip("/") if server_url else None
        self._http = http
        self._owns_http = http is None
        self._clock = clock
        self._timeout_seconds = timeout_seconds

    async def __aenter__(self) -> PhoneApp:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    @property
    def server_url(self) -> str | None:
        return self._server_url or self.wallet.server_url

    def local_now(self) -> float:
        return self._clock()

    # --- Session ----------------------------------------------------------------------------

    async def login(self, phone: str, password: str, device_name: str | None = None) -> dict:
        """Sign in; a different driver or host on this phone drops the card it held. Returns /me."""
        device_name = device_name or socket.gethostname()
        pair = await self._call("POST", "/v1/driver/auth/login",
                                json={"phone": phone, "password": password, "device_name": device_name})
        received_at = self._clock()
        with self.store.update() as wallet:
            if _digits(wallet.phone) != _digits(phone) or wallet.server_url != self.server_url:
                _forget_card(wallet)
            wallet.server_url = self.server_url
            wallet.phone = phone
            wallet.device_name = device_name
            wallet.session = _session_from(pair, received_at)
        self.wallet = wallet
        await self.sync_time()
        return await self.me()

    async def logout(self) -> None:
        """End the session on the host and take the card off this phone."""
        if self.wallet.session is not None:
            try:
                await self._authorized("POST", "/v1/driver/auth/logout")
            except NotSignedIn:
                pass  # already over on the host
        with self.store.update() as wallet:
            wallet.session = None
            _forget_card(wallet)
        self.wallet = wallet

    async def refresh(self) -> None:
        """Trade the refresh token for a new pair (the old one is used up: saved at once)."""
        ended: HostRefused | None = None
        with self.store.update() as wallet:
            session = wallet.session
            if session is None:
                raise NotSignedIn("not signed in on this phone: run `fuelcard phone login`")
            mine = self.wallet.session
            # Another process on this phone refreshed first: its pair is the live one.
            if mine is None or session.refresh_token == mine.refresh_token:
                try:
                    pair = await self._call("POST", "/v1/driver/auth/refresh",
                                            json={"refresh_token": session.refresh_token})
                except HostRefused as refused:
                    if refused.status_code != 401:
                        raise
                    ended = refused
                    wallet.session = None  # saved: the host has ended this session
                else:
                    wallet.session = _session_from(pair, self._clock())
        self.wallet = wallet
        if ended is not None:
            raise NotSignedIn(f"{ended.detail}; sign in again with `fuelcard phone login`")

    # --- Driver routes ----------------------------------------------------------------------

    async def me(self) -> dict:
        return await self._authorized("GET", "/v1/driver/me")

    async def cards(self) -> list[dict]:
        return (await self._authorized("GET", "/v1/driver/cards"))["cards"]

    async def limits(self, card_id: int) -> dict:
        return await self._authorized("GET", f"/v1/driver/cards/{int(card_id)}/limits")

    async def transactions(self, *, limit: int | None = None, cursor: str | None = None,
                           card_id: int | None = None) -> dict:
        params = {name: value for name, value in
                  (("limit", limit), ("cursor", cursor), ("card_id", card_id)) if value is not None}
        return await self._authorized("GET", "/v1/driver/transactions", params=params)

    async def enroll(self, card_id: int, device_label: str | None = None) -> Enrollment:
        """Put a card on this phone: keep its DPAN and device key, restart the counter, sync time."""
        label = device_label or self.wallet.device_name or socket.gethostname()
        sent_at = self._clock()
        answer = await self._authorized("POST", f"/v1/driver/cards/{int(card_id)}/enrollment",
                                        json={"device_label": label})
        received_at = self._clock()
        try:
            device_key = base64.b64decode(answer["device_key"], validate=True)
        except (binascii.Error, ValueError):
            raise PhoneError("the host sent a device key that is not base64") from None
        if len(device_key) != _DEVICE_KEY_LENGTH:
            raise PhoneError(f"the host sent a device key of {len(device_key)} bytes, not {_DEVICE_KEY_LENGTH}")
        enrollment = Enrollment(
            enrollment_id=answer["enrollment_id"], card_id=answer["card_id"], card=answer["card"],
            dpan=answer["dpan"], device_key=device_key, device_label=label,
        )
        with self.store.update() as wallet:
            wallet.enrollment = enrollment
            wallet.atc = 0  # a new enrollment is a new counter on the host
            wallet.token_validity_seconds = answer["token_validity_seconds"]
            wallet.allowed_clock_skew_seconds = answer["allowed_clock_skew_seconds"]
            # The enrollment's own time stamp is a first offset, good even if the sync below fails.
            _record_offset(wallet, _sample(answer["server_time_ms"], sent_at, received_at), received_at)
        self.wallet = wallet
        try:
            await self.sync_time()
        except HostUnreachable:
            pass
        return enrollment

    # --- Time -------------------------------------------------------------------------------

    async def sync_time(self, samples: int = TIME_SAMPLES) -> TimeSync:
        """Measure server time - phone time; keep the sample with the shortest round trip."""
        best: TimeSync | None = None
        for _ in range(max(1, samples)):
            sent_at = self._clock()
            answer = await self._call("GET", "/v1/time")
            received_at = self._clock()
            offset, round_trip = _sample(answer["server_time_ms"], sent_at, received_at)
            if best is None or round_trip < best.round_trip_seconds:
                best = TimeSync(
                    offset_seconds=offset, round_trip_seconds=round_trip,
                    server_time=answer["server_time_ms"] / 1000,
                    token_validity_seconds=answer["token_validity_seconds"],
                    allowed_clock_skew_seconds=answer["allowed_clock_skew_seconds"],
                )
        with self.store.update() as wallet:
            _record_offset(wallet, (best.offset_seconds, best.round_trip_seconds), received_at)
            wallet.token_validity_seconds = best.token_validity_seconds
            wallet.allowed_clock_skew_seconds = best.allowed_clock_skew_seconds
        self.wallet = wallet
        return best

    @property
    def clock_offset_seconds(self) -> float:
        return self.wallet.clock_offset_seconds or 0.0

    def server_now(self) -> float:
        """The host's time as this phone best knows it: its own clock plus the measured offset."""
        return self._clock() + self.clock_offset_seconds

    def warn_if_skewed(self) -> ClockCheck:
        """Say whether the phone's clock is off by more than the host tolerates (tokens still work)."""
        offset = self.wallet.clock_offset_seconds
        if offset is None:
            return ClockCheck(False, None, "the phone has not synced its clock with the host yet")
        allowed = self.wallet.allowed_clock_skew_seconds or 0
        # offset = server - phone: a positive offset means the phone is behind.
        direction = "behind" if offset > 0 else "ahead of"
        words = tokens.describe_offset(round(offset))
        if abs(offset) > allowed:
            return ClockCheck(True, offset, f"your phone clock is {words} {direction} the server; "
                                            "tokens use the server's time")
        return ClockCheck(False, offset, f"your phone clock is within {allowed} seconds of the server "
                                         f"({words} {direction.removesuffix(' of')})")

    # --- Tokens (offline) -------------------------------------------------------------------

    def make_token(self, unpredictable_number: bytes | None = None) -> ShownToken:
        """A new token in server time; its counter is on disk before the token exists."""
        with self.store.update() as wallet:
            enrollment = wallet.enrollment
            if enrollment is None:
                raise NotEnrolled("no card on this phone: run `fuelcard phone enroll CARD_ID`")
            if not wallet.token_validity_seconds:
                raise PhoneError("the host's token window is unknown: run `fuelcard phone time`")
            if wallet.atc >= tokens.MAX_ATC:
                raise PhoneError("this enrollment has used every transaction counter: enroll the card again")
            wallet.atc += 1
        self.wallet = wallet
        offset = wallet.clock_offset_seconds or 0.0
        generated_at = int(self._clock() + offset)
        token = tokens.make_token(enrollment.device_key, dpan=enrollment.dpan, atc=wallet.atc,
                                  generated_at=generated_at, unpredictable_number=unpredictable_number)
        validity = wallet.token_validity_seconds
        return ShownToken(
            payload=tokens.encode_qr_payload(token), token=token, card=enrollment.card,
            validity_seconds=validity, expires_at_server=generated_at + validity,
            clock_offset_seconds=offset,
        )

    # --- HTTP -------------------------------------------------------------------------------

    async def _authorized(self, method: str, path: str, **request: Any) -> Any:
        session = self.wallet.session
        if session is None:
            raise NotSignedIn("not signed in on this phone: run `fuelcard phone login`")
        if self._clock() >= session.access_expires_at - ACCESS_REFRESH_MARGIN_SECONDS:
            await self.refresh()
        try:
            return await self._call(method, path, bearer=self.wallet.session.access_token, **request)
        except HostRefused as refused:
            if refused.status_code != 401 or refused.code not in _EXPIRED_ACCESS_CODES:
                if refused.status_code == 401:
                    raise NotSignedIn(f"{refused.detail}; sign in again with `fuelcard phone login`") from None
                raise
        await self.refresh()
        try:
            return await self._call(method, path, bearer=self.wallet.session.access_token, **request)
        except HostRefused as refused:
            if refused.status_code == 401:
                raise NotSignedIn(f"{refused.detail}; sign in again with `fuelcard phone login`") from None
            raise

    async def _call(self, method: str, path: str, *, bearer: str | None = None, **request: Any) -> Any:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        try:
            response = await self._client().request(method, path, headers=headers, **request)
        except httpx.TransportError as error:
            raise HostUnreachable(f"cannot reach the host at {self.server_url}: {error or type(error).__name__}") from None
        if response.status_code >= 400:
            raise _refusal(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            if not self.server_url:
                raise NotSignedIn("no host known on this phone: run `fuelcard phone login --server URL`")
            self._http = httpx.AsyncClient(base_url=self.server_url, timeout=self._timeout_seconds)
        return self._http


def _sample(server_time_ms: int, sent_at: float, received_at: float) -> tuple[float, float]:
    """(offset, round trip): the server answered, on average, halfway through the round trip."""
    return server_time_ms / 1000 - (sent_at + received_at) / 2, received_at - sent_at


def _record_offset(wallet: Wallet, sample: tuple[float, float], measured_at: float) -> None:
    wallet.clock_offset_seconds, wallet.clock_round_trip_seconds = sample
    wallet.clock_synced_at = measured_at


def _session_from(pair: dict, received_at: float) -> Session:
    return Session(
        access_token=pair["access_token"], access_expires_at=received_at + pair["expires_in"],
        refresh_token=pair["refresh_token"], refresh_expires_at=received_at + pair["refresh_expires_in"],
    )


def _digits(phone: str | None) -> str:
    # "+7 900 000-00-01" and "+79000000001" are one driver (the host normalises the same way).
    return "".join(character for character in phone or "" if character.isdigit())


def _forget_card(wallet: Wallet) -> None:
    wallet.enrollment = None
    wallet.atc = 0


def _refusal(response: httpx.Response) -> HostRefused:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        code = str(body.get("error") or "error")
        detail = body["detail"]
        if not isinstance(detail, str):
            detail = str(detail)
    else:
        code = "http_error"
        detail = f"the host answered {response.status_code} {response.reason_phrase}".strip()
    retry_after = response.headers.get("Retry-After")
    if retry_after:
        detail = f"{detail} (try again in {retry_after} seconds)"
    return HostRefused(response.status_code, code, detail, retry_after=retry_after)
