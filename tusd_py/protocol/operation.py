"""Which operation a request really asks for, and whether it may run without credentials.

Rules (one place; the gate in ``tusd_py.http.gate`` applies them before any handler runs):

1. X-HTTP-Method-Override (tus 1.0.0, "X-HTTP-Method-Override") exists for HTTP stacks that can
   only send GET and POST. Clients that need it send POST, so POST is the only wire method that may
   carry it; on any other wire method it is refused with 400. Letting OPTIONS or HEAD carry it is
   what made the auth exemption and the response framing disagree with the operation that ran.
2. An override names PATCH, DELETE, HEAD, GET or POST (a no-op). OPTIONS is not a target: it is
   the one operation that runs without a token, so it must be what the wire says.
3. The response is framed by the *wire* method (a HEAD on the wire never gets a body, whatever
   runs); the override only chooses the handler.
4. Only two kinds of request run without credentials when auth is on: a wire OPTIONS with no
   override (CORS preflights carry no credentials, Fetch standard "CORS-preflight request", and tus
   capability discovery reads no upload), and a route on the public list (health, the OpenAPI
   document, static pages). Everything else, aiohttp's own 404/405 included, needs a valid token.
5. The override is honoured only by the tus routes (their handlers are picked by the effective
   method); on any other route it would be silently ignored, so it is refused there.
"""

from __future__ import annotations

from dataclasses import dataclass

from tusd_py.model.errors import bad_request

OVERRIDE_HEADER = "X-HTTP-Method-Override"
OVERRIDE_CARRIER = "POST"
OVERRIDE_TARGETS = frozenset({"PATCH", "DELETE", "HEAD", "GET", "POST"})


@dataclass(frozen=True, slots=True)
class Operation:
    """What a request will do: ``method`` picks the handler, ``wire_method`` frames the response."""

    method: str
    wire_method: str
    public: bool  # runs without credentials (rule 4)

    @property
    def overridden(self) -> bool:
        return self.method != self.wire_method


def resolve_operation(wire_method: str, override: str | None, *, tus_route: bool, public_route: bool) -> Operation:
    """The operation a request asks for (rules 1, 2, 4, 5); raises a 400 TusError for a refused override."""
    method = wire_method
    if override is not None:
        if wire_method != OVERRIDE_CARRIER:
            raise bad_request(f"{OVERRIDE_HEADER} is only accepted on POST requests, not on {wire_method[:16]}")
        if not tus_route:
            raise bad_request(f"{OVERRIDE_HEADER} is only accepted on tus upload URLs")
        method = override.strip().upper()
        if method not in OVERRIDE_TARGETS:
            raise bad_request(
                f"{OVERRIDE_HEADER} {override[:20]!r} is not one of {', '.join(sorted(OVERRIDE_TARGETS))}"
            )
    public = public_route or (wire_method == "OPTIONS" and override is None)
    return Operation(method=method, wire_method=wire_method, public=public)
