"""Progress of long steps: a tqdm bar on a terminal, plain periodic lines otherwise (CI logs, pipes).

Stages take a ``progress`` setting and wrap their loops in :func:`steps`; ``None`` or
``False`` shows nothing. Everything goes to stderr, so the one-line summaries on stdout stay
clean.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator

BAR, LINES = "bar", "lines"


def mode_for(stream=None) -> str:
    """``bar`` when the stream is a terminal, else ``lines``."""
    stream = stream or sys.stderr
    return BAR if getattr(stream, "isatty", lambda: False)() else LINES


def steps(
    items: Iterable,
    desc: str,
    progress,
    *,
    total: int | None = None,
    unit: str = "step",
    units: str | None = None,
    every: float = 10.0,
) -> Iterator:
    """Yield ``items``, showing progress as ``progress`` says (``bar``/``True``, ``lines``, or off).

    ``lines`` prints "desc: 3/5 families (12s)" at most every ``every`` seconds and once at the
    end, so a long step in a log is never silent for long (``units``: the plural, default unit + s).
    """
    units = units or f"{unit}s"
    if not progress:
        yield from items
        return
    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = None
    if progress in (True, BAR):
        from tqdm.auto import tqdm

        yield from tqdm(items, desc=desc, total=total, unit=unit, file=sys.stderr)
        return
    t0 = last = time.perf_counter()
    n = 0
    of = f"/{total}" if total is not None else ""
    for item in items:
        yield item
        n += 1
        now = time.perf_counter()
        if now - last >= every:
            print(f"{desc}: {n}{of} {units} ({now - t0:.0f}s)", file=sys.stderr, flush=True)
            last = now
    print(f"{desc}: {n}{of} {units} done ({time.perf_counter() - t0:.0f}s)", file=sys.stderr, flush=True)
