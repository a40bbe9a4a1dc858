"""One console for the whole stack: each line prefixed with the part it came from."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

_STYLES = {"dev": "bold", "valkey": "red", "server": "cyan", "worker": "magenta", "smtp": "green"}
_WIDTH = max(len(name) for name in _STYLES)


class Output:
    """Prints lines as ``server │ text``; safe from several threads (rich's Console locks)."""

    def __init__(self, console: Console | None = None) -> None:
        # soft_wrap (in `line`) and no highlighting: child output is forwarded as it came.
        self.console = console or Console(highlight=False)

    def line(self, source: str, text: str, style: str = "") -> None:
        prefix = Text(f"{source:>{_WIDTH}} │ ", style=_STYLES.get(source, "dim"))
        self.console.print(prefix + Text(text, style=style), soft_wrap=True)

    def note(self, text: str) -> None:
        self.line("dev", text)

    def error(self, text: str) -> None:
        self.line("dev", text, style="bold red")
