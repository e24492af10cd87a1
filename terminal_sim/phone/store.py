"""The phone's wallet: one file, encrypted under the app PIN.

Layout: a plain header (magic, scrypt cost, salt, nonce) followed by AES-256-GCM ciphertext of
the wallet's JSON; the header is the GCM associated data, so it cannot be altered either. The key
is derived from the PIN with scrypt, once per process (the salt stays with the wallet). Every
save writes a temporary file beside the wallet and renames it over the old one (os.replace), so a
crash leaves either the old wallet or the new one, never half of one; the file is mode 0600.

Only the header is in clear: the device key, the DPAN and the session tokens are inside the
ciphertext.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import secrets
import struct
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from terminal_sim.phone.errors import PhoneError

WALLET_FILE_NAME = "wallet.bin"
DEFAULT_HOME = Path("~/.fuelcard-phone")

_MAGIC = b"FCPHONE1"
# magic, scrypt log2(n), r, p, salt, nonce
_HEADER = struct.Struct(">8sBBB16s12s")
_SALT_LENGTH = 16
_NONCE_LENGTH = 12
_KEY_LENGTH = 32
# scrypt at n=2**15, r=8 costs ~32 MiB and ~0.1 s: cheap once per command, dear for a guesser.
DEFAULT_SCRYPT_LOG2_N = 15
_SCRYPT_R = 8
_SCRYPT_P = 1


class WrongPin(PhoneError):
    """The PIN does not open the wallet (or the file was altered)."""


class WalletDamaged(PhoneError):
    """The wallet file is not a wallet at all."""


@dataclass
class Session:
    """The driver's sign-in; expiry times are on the phone's own clock (only differences matter)."""

    access_token: str
    access_expires_at: float
    refresh_token: str
    refresh_expires_at: float


@dataclass
class Enrollment:
    """A card put on this phone: the only copy of its device key outside the host."""

    enrollment_id: int
    card_id: int
    card: str  # masked card number, for display
    dpan: str
    device_key: bytes
    device_label: str


@dataclass
class Wallet:
    server_url: str | None = None
    phone: str | None = None
    device_name: str | None = None
    session: Session | None = None
    enrollment: Enrollment | None = None
    # The last transaction counter used; the next token uses atc + 1.
    atc: int = 0
    # server time - phone time, in seconds, and when (phone time) it was measured.
    clock_offset_seconds: float | None = None
    clock_synced_at: float | None = None
    clock_round_trip_seconds: float | None = None
    token_validity_seconds: int | None = None
    allowed_clock_skew_seconds: int | None = None

    def to_json(self) -> bytes:
        data = asdict(self)
        if self.enrollment is not None:
            data["enrollment"]["device_key"] = base64.b64encode(self.enrollment.device_key).decode("ascii")
        return json.dumps(data, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> Wallet:
        data = json.loads(raw)
        session = data.pop("session", None)
        enrollment = data.pop("enrollment", None)
        wallet = cls(**data)
        if session is not None:
            wallet.session = Session(**session)
        if enrollment is not None:
            enrollment["device_key"] = base64.b64decode(enrollment["device_key"])
            wallet.enrollment = Enrollment(**enrollment)
        return wallet


def resolve_home(home: str | os.PathLike | None = None) -> Path:
    """The wallet folder: the given one, else FUELCARD_PHONE_HOME, else ~/.fuelcard-phone."""
    if home is None:
        home = os.environ.get("FUELCARD_PHONE_HOME") or DEFAULT_HOME
    return Path(home).expanduser()


class WalletStore:
    """Reads and writes one wallet file under one PIN."""

    def __init__(self, path: str | os.PathLike, pin: str, *, scrypt_log2_n: int = DEFAULT_SCRYPT_LOG2_N):
        if not pin:
            raise PhoneError("the app PIN must not be empty")
        self.path = Path(path)
        self._pin = pin.encode("utf-8")
        self._scrypt_log2_n = scrypt_log2_n
        self._salt: bytes | None = None
        self._key: bytes | None = None

    @classmethod
    def in_home(cls, home: str | os.PathLike | None, pin: str, **options) -> WalletStore:
        return cls(resolve_home(home) / WALLET_FILE_NAME, pin, **options)

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> Wallet:
        """The wallet in the file (a new, empty one when there is no file); WrongPin if the PIN is wrong."""
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            return Wallet()
        if len(blob) < _HEADER.size or not blob.startswith(_MAGIC):
            raise WalletDamaged(f"{self.path} is not a phone wallet")
        header, ciphertext = blob[: _HEADER.size], blob[_HEADER.size :]
        _magic, log2_n, r, p, salt, nonce = _HEADER.unpack(header)
        key = self._derive(salt, log2_n, r, p)
        try:
            plaintext = AESGCM(key).decrypt(nonce, ciphertext, header)
        except InvalidTag:
            raise WrongPin(f"wrong PIN: the wallet {self.path} cannot be opened with it") from None
        self._salt, self._key, self._scrypt_log2_n = salt, key, log2_n
        return Wallet.from_json(plaintext)

    def save(self, wallet: Wallet) -> None:
        """Encrypt and write the wallet atomically (temporary file + rename), mode 0600."""
        if self._key is None:
            if self.path.exists():
                self.load()  # the file exists: only the PIN that opens it may replace it
            else:
                self._salt = secrets.token_bytes(_SALT_LENGTH)
                self._key = self._derive(self._salt, self._scrypt_log2_n, _SCRYPT_R, _SCRYPT_P)
        nonce = secrets.token_bytes(_NONCE_LENGTH)
        header = _HEADER.pack(_MAGIC, self._scrypt_log2_n, _SCRYPT_R, _SCRYPT_P, self._salt, nonce)
        blob = header + AESGCM(self._key).encrypt(nonce, wallet.to_json(), header)

        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(blob)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            raise
        _fsync_directory(self.path.parent)

    @contextlib.contextmanager
    def update(self) -> Iterator[Wallet]:
        """The newest wallet, under an exclusive lock; saved when the block ends without an error.

        The lock keeps two commands on one phone (say `pay` and `cards`) from both using the same
        transaction counter or the same one-time refresh token.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            wallet = self.load()
            yield wallet
            self.save(wallet)
        finally:
            os.close(fd)  # closing releases the lock

    def _derive(self, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
        if self._key is not None and salt == self._salt:
            return self._key
        if not 10 <= log2_n <= 22 or not 1 <= r <= 32 or not 1 <= p <= 16:
            raise WalletDamaged(f"{self.path} has implausible key-derivation parameters")
        return Scrypt(salt=salt, length=_KEY_LENGTH, n=2**log2_n, r=r, p=p).derive(self._pin)


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk (POSIX; not on Windows).
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
