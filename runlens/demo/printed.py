"""What the demo's ops print to stdout and stderr (their compute logs), as bytes.

Kept apart from :mod:`runlens.demo.definitions` (which imports dagster) so tests can
compare what runlens reads back with what the ops wrote without importing dagster.
Each block is written as raw bytes (``sys.stdout.buffer``), so what lands in Dagster's
compute log file does not depend on the worker's locale: these bytes, exactly.

The blocks hold what makes compute logs hard to read: unicode (two-, three- and
four-byte UTF-8), ANSI colour codes, a ``\\r`` progress bar, a long line, and bytes
that are not UTF-8 at all.
"""

from __future__ import annotations

UNICODE_LINE = "naïve café ✓ 数据 🚀"
ANSI_LINE = "\x1b[32mOK\x1b[0m checks passed, \x1b[1;31mWARN\x1b[0m 2 rows late"
PROGRESS_BAR = "".join(f"\rprogress {pct:3d}%" for pct in range(0, 101, 25)) + "\n"
LONG_LINE = "long line: " + "0123456789abcdef" * 1250  # 20,011 characters
#: Not UTF-8: a lone continuation byte and two bytes no UTF-8 text holds.
INVALID_BYTES = b"raw bytes: \x80\xff\xfe end\n"

#: Megabytes the demo's ``flood`` op writes to stderr by default (one file, line by line).
FLOOD_MB = 5
FLOOD_LINE_BYTES = 100


def stdout_bytes(step: str) -> bytes:
    """What the op of step `step` writes to stdout."""
    return (f"{step}: stdout begins\n{UNICODE_LINE}\n{ANSI_LINE}\n".encode()
            + INVALID_BYTES + f"{step}: stdout ends\n".encode())


def stderr_bytes(step: str) -> bytes:
    """What the op of step `step` writes to stderr (a failing op writes it before raising)."""
    return (f"{step}: stderr begins\n{PROGRESS_BAR}{LONG_LINE}\n\x1b[33m{UNICODE_LINE}\x1b[0m\n"
            f"{step}: stderr ends\n").encode()


def flood_bytes(mb: float = FLOOD_MB) -> bytes:
    """What the ``flood`` op writes to stderr: ``mb`` megabytes of numbered 100-byte lines.

    Every line holds a two-byte character, so a cut in the middle of one is visible.
    """
    lines = int(mb * 1_000_000) // FLOOD_LINE_BYTES
    prefix = "flood é "
    pad = FLOOD_LINE_BYTES - len(prefix.encode()) - 9 - 1  # 9 digits and the newline
    return b"".join(f"{prefix}{i:09d}{'.' * pad}\n".encode() for i in range(lines))
