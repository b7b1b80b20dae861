"""Progress of a run, as values handed to a callback: the library counts, the caller draws.

:class:`Bar` draws it with tqdm on stderr; it is what ``progress=True`` and the command line use. Any other
callable taking a :class:`Progress` works too (a notebook widget, a log line every minute).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Never

if TYPE_CHECKING:
    from tqdm import tqdm


@dataclass(frozen=True, slots=True)
class Progress:
    """Rows finished so far out of ``total``, per state, the attempts refused and retried, and a state of the
    whole run (``waiting until 05:42``) or None."""

    total: int
    finished: int
    done: int
    failed: int
    unknown: int
    retries: int
    note: str | None = None


class Bar:
    """A tqdm progress bar on stderr, made on the first call."""

    def __init__(self) -> None:
        self._bar: tqdm[Never] | None = None

    def __call__(self, progress: Progress) -> None:
        bar = self._bar
        if bar is None:
            from tqdm import tqdm

            bar = self._bar = tqdm(total=progress.total, unit="row", file=sys.stderr, dynamic_ncols=True)
        bar.update(progress.finished - bar.n)
        bar.set_description_str(progress.note or "", refresh=False)
        bar.set_postfix(done=progress.done, failed=progress.failed, unknown=progress.unknown, retries=progress.retries)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
