"""The Recordings API: JSON over HTTP for the post-upload life of the caller's uploads.

* ``routes``: :func:`add_recordings_routes`, called by ``make_app``;
* ``handlers``: thin aiohttp handlers; ``params``: query parameter parsing (pure);
* ``schemas``: the response shapes (msgspec Structs); ``openapi``: the OpenAPI 3.1 document;
* ``deletion``: deleting one recording and its bytes, the way a tus DELETE does.
"""
