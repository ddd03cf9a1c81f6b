"""The tests' one client: ``tus`` (tus requests through aiohttp's client, whole uploads), ``raw``
(raw-socket HTTP/1.1 framed by h11: interim responses, partial bodies, slow reads, keep-alive) and
``wait`` (bounded polling)."""
