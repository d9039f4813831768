"""Reconnection delays: exponential backoff with "equal jitter" (half the step fixed, half random),
so clients cut at once by one failure do not come back in lockstep (as the TypeScript SDK does)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Optional


@dataclass(frozen=True)
class Reconnect:
    """How a stream reconnects after its connection drops."""

    #: Consecutive failed attempts before giving up with SluiceConnectionError (0: never resume).
    max_attempts: int = 8
    #: Step of the first retry, seconds.
    initial_delay: float = 0.25
    #: Largest step, seconds.
    max_delay: float = 5.0

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 0:
            raise ValueError(f"Reconnect.max_attempts: expected an integer >= 0, got {self.max_attempts!r}")
        for name in ("initial_delay", "max_delay"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"Reconnect.{name}: expected seconds >= 0, got {v!r}")


def backoff_delay(
    attempt: int, policy: Reconnect, rand: Callable[[], float] = random.random, retry_after: Optional[float] = None
) -> float:
    """The wait before retry number ``attempt`` (1 for the first): the step doubles from
    ``initial_delay`` up to ``max_delay`` and the wait is uniform in [step/2, step]; a server's
    ``Retry-After`` raises it, still capped by ``max_delay``."""
    step = min(policy.max_delay, policy.initial_delay * 2.0 ** min(max(0, attempt - 1), 30))
    jittered = step / 2 + rand() * (step / 2)
    floor = 0.0 if retry_after is None else min(policy.max_delay, retry_after)
    return max(jittered, floor)
