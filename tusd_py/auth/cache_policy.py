"""How long a fetched JWKS is trusted before it is fetched again, from its Cache-Control. Pure.

RFC 9111 §5.2.2.1: ``max-age`` gives the freshness lifetime; ``no-store`` / ``no-cache`` ask for a
fetch every time, which for a key set would mean one fetch per request: the lower bound applies
instead. The bounds keep a provider's zero from hammering it and a year-long max-age from
delaying a revoked key's removal.
"""

from __future__ import annotations

import re

DEFAULT_SECONDS = 600.0  # no Cache-Control: 10 minutes
MIN_SECONDS = 60.0
MAX_SECONDS = 24 * 3600.0

_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-maxage|max-age)\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|=|$)", re.IGNORECASE)


def fresh_for(cache_control: str | None, *, lo: float = MIN_SECONDS, hi: float = MAX_SECONDS) -> float:
    """Seconds the response stays fresh, within ``[lo, hi]``."""
    if not cache_control:
        return min(max(DEFAULT_SECONDS, lo), hi)
    if _NO_CACHE.search(cache_control):
        return lo
    ages = [int(value) for value in _MAX_AGE.findall(cache_control)]
    if not ages:
        return min(max(DEFAULT_SECONDS, lo), hi)
    return min(max(float(min(ages)), lo), hi)
