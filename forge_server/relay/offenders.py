"""Who recently sent malformed frames, so the relay can refuse their next upgrades early.

A hostile client that reconnects as fast as it is thrown out costs the relay a WebSocket
upgrade, an authorization and a room join each time. :class:`OffenderTracker` keeps a score per
key (the peer address and a digest of the token it presented) that grows by one with every
connection closed for a malformed frame and halves every ``half_life_s``; while a key's score is
at least ``threshold``, its upgrades are refused with HTTP 429 before any other work. Memory is
bounded: at most ``max_keys`` keys, the lowest scores forgotten first.
"""

from __future__ import annotations

import hashlib
import math
import time

__all__ = ["OffenderTracker", "offender_key"]


def offender_key(peer: str, token: str | None) -> str:
    """The key of a client: its address and a short digest of its token (never the token)."""
    if not token:
        return peer
    digest = hashlib.blake2b(token.encode("utf-8", "replace"), digest_size=8).hexdigest()
    return f"{peer}|{digest}"


class OffenderTracker:
    """Time-decayed strike counts per key, bounded in size."""

    def __init__(self, threshold: float, half_life_s: float, max_keys: int = 10_000) -> None:
        if threshold <= 0 or half_life_s <= 0 or max_keys <= 0:
            raise ValueError("threshold, half_life_s and max_keys must be positive")
        self.threshold = threshold
        self.half_life_s = half_life_s
        self.max_keys = max_keys
        self._scores: dict[str, tuple[float, float]] = {}  # key -> (score, when)

    def __len__(self) -> int:
        return len(self._scores)

    def score(self, key: str, now: float | None = None) -> float:
        entry = self._scores.get(key)
        if entry is None:
            return 0.0
        score, when = entry
        now = time.monotonic() if now is None else now
        return score * 0.5 ** ((now - when) / self.half_life_s)

    def strike(self, key: str, now: float | None = None) -> float:
        """Count one offence of ``key``; returns its new score."""
        now = time.monotonic() if now is None else now
        score = self.score(key, now) + 1.0
        if key not in self._scores and len(self._scores) >= self.max_keys:
            self._forget_lowest(now)
        self._scores[key] = (score, now)
        return score

    def retry_after(self, key: str, now: float | None = None) -> float | None:
        """Seconds until ``key`` may connect again, or None if it may connect now."""
        now = time.monotonic() if now is None else now
        score = self.score(key, now)
        # Just under the threshold, so that "threshold strikes in quick succession" counts
        # despite the decay in the milliseconds between them.
        limit = self.threshold - 0.01
        if score < limit:
            if key in self._scores and score < 0.5:
                del self._scores[key]  # decayed away: forget it
            return None
        # score * 0.5 ** (t / half_life) == limit  ->  t = half_life * log2(score / limit)
        return max(self.half_life_s * math.log2(score / limit), 0.1)

    def _forget_lowest(self, now: float) -> None:
        # Drop the lower-scored half at once, so a flood of new keys costs O(1) amortised.
        ranked = sorted(self._scores, key=lambda k: self.score(k, now))
        for key in ranked[: max(1, len(ranked) // 2)]:
            del self._scores[key]
