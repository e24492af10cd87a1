"""How long the shown token stays valid, and the renewing display at the pump.

The countdown is computed in server time (phone clock + measured offset) against the token's
`expires_at_server` = generated_at + validity: exactly where the host's window ends (the host
then still allows its clock-skew tolerance, so a token shown until zero is never refused for age).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from terminal_sim.phone.app import PhoneApp, ShownToken
from terminal_sim.phone.qr import qr_text, write_png

# How often the bar moves; it also bounds how late after zero a new token appears.
TICK_SECONDS = 0.25


@dataclass(frozen=True)
class Countdown:
    seconds_left: float
    fraction_left: float
    expired: bool


def countdown(*, expires_at_server: float, server_now: float, validity_seconds: int) -> Countdown:
    """Time left on a token at `server_now`: a pure function, so it is tested without sleeping."""
    seconds_left = max(0.0, expires_at_server - server_now)
    fraction_left = min(1.0, seconds_left / validity_seconds) if validity_seconds > 0 else 0.0
    return Countdown(seconds_left=seconds_left, fraction_left=fraction_left, expired=seconds_left <= 0)


def render(shown: ShownToken, qr: str, left: Countdown, *, number: int) -> Group:
    """The pump screen: the QR code, the card, a bar of the time left."""
    bar_row = Table.grid(padding=(0, 1))
    bar_row.add_column(width=40)
    bar_row.add_column()
    style = "green" if left.fraction_left > 0.25 else "yellow" if left.seconds_left > 10 else "red"
    bar_row.add_row(
        ProgressBar(total=max(shown.validity_seconds, 1), completed=left.seconds_left, width=40,
                    complete_style=style, finished_style=style),
        Text(f"{int(left.seconds_left + 0.999)} s left", style=style),
    )
    return Group(
        Text(qr, no_wrap=True, overflow="crop"),
        Text(f"card {shown.card}   token #{shown.atc} ({number} shown)"),
        bar_row,
    )


def run_pay_loop(phone: PhoneApp, *, console: Console, count: int | None = None,
                 png_path: Path | None = None, sleep: Callable[[float], None] = time.sleep,
                 tick_seconds: float = TICK_SECONDS) -> list[ShownToken]:
    """Show a token with its countdown; at zero make and show the next; stop after `count` tokens
    (None: until Ctrl-C, which propagates as KeyboardInterrupt). Returns the tokens shown."""
    shown_tokens: list[ShownToken] = []
    with Live(console=console, auto_refresh=False, transient=False) as live:
        while count is None or len(shown_tokens) < count:
            shown = phone.make_token()
            shown_tokens.append(shown)
            if png_path is not None:
                write_png(shown.payload, png_path)
            if not console.is_terminal:
                # A pipe or a log sees only the final screen of a Live display: one line per token.
                console.print(f"token #{shown.atc} valid until server time {shown.expires_at_server}: "
                              f"{shown.payload}", soft_wrap=True)
            qr = qr_text(shown.payload)
            while True:
                left = countdown(expires_at_server=shown.expires_at_server, server_now=phone.server_now(),
                                 validity_seconds=shown.validity_seconds)
                live.update(render(shown, qr, left, number=len(shown_tokens)), refresh=True)
                if left.expired:
                    break
                sleep(min(tick_seconds, left.seconds_left))
    return shown_tokens
