"""A progress bar over a benchmark's cases, only for a person watching a terminal.

:func:`progress` wraps the cases in a tqdm bar on stderr when stderr is a
terminal and the ``CI`` environment variable is unset (or empty); otherwise
(redirected, piped, captured by pytest, on CI) it returns the cases unchanged
and prints nothing extra. Lines printed while the bar is shown go through
:func:`echo`, which keeps the bar below them.
"""

from __future__ import annotations

import os
import sys

__all__ = ["progress", "show_progress", "echo"]


def show_progress(stream=None, environ=None):
    """Whether to draw a bar: ``stream`` (default stderr) is a terminal and ``CI`` is unset."""
    stream = sys.stderr if stream is None else stream
    environ = os.environ if environ is None else environ
    if environ.get("CI"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def progress(items, *, desc, unit="case", stream=None, environ=None):
    """``items`` in a tqdm bar on ``stream`` (default stderr) when :func:`show_progress`;
    otherwise ``items`` itself."""
    if not show_progress(stream, environ):
        return items
    from tqdm import tqdm

    items = list(items)
    return tqdm(items, desc=desc, unit=unit, total=len(items), leave=False,
                file=sys.stderr if stream is None else stream, dynamic_ncols=True)


def echo(line):
    """Print ``line`` to stdout, above the progress bar when one is shown."""
    tqdm_module = sys.modules.get("tqdm")
    if tqdm_module is not None and getattr(tqdm_module.tqdm, "_instances", None):
        tqdm_module.tqdm.write(line, file=sys.stdout)
    else:
        print(line)
    sys.stdout.flush()
