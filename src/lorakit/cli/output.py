"""What the commands print: whole lines whatever the terminal, tables that fold instead of cutting."""

from rich.console import Console
from rich.table import Table


def console(stderr: bool = False) -> Console:
    """Rich wraps and cuts lines at the terminal's width, and at $COLUMNS or 80 columns when the output
    is piped. Paths, commands, JSON and values printed here must come out whole: lines are never
    wrapped (soft_wrap), and off a terminal tables get all the width they need."""
    c = Console(stderr=stderr, soft_wrap=True)
    return c if c.is_terminal else Console(stderr=stderr, soft_wrap=True, width=100_000)


out = console()
err = console(stderr=True)


def table(*headers: str, title: str | None = None) -> Table:
    """A table whose cells fold onto more lines in a narrow terminal instead of losing characters."""
    t = Table(title=title)
    for h in headers:
        t.add_column(h, overflow="fold")
    return t


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def human(n: float) -> str:
    """A size in bytes, as people read it."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
