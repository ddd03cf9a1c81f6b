"""The values every layer speaks: an upload and its id rule, fences, storage failures, errors and
their named codes, lifecycle events, the typed keys a request carries.

Layer 0: imports nothing of tusd-py above it (only the standard library, msgspec and aiohttp's
typed keys), so every other package may import it.
"""
