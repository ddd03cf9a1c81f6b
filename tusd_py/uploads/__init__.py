"""The operation layer: every way in performs its upload operations here, in one order of steps.

``operations.py`` holds :class:`~tusd_py.uploads.operations.Uploads`: create, append, read, finish,
delete, declare a length, concatenate. The tus handlers, the resumable-upload draft, the Recordings
API, signed links, cleanup, the expiry sweep and start-up recovery call it with an
:class:`~tusd_py.uploads.actor.Actor` (who asks, not an HTTP request), and it decides switches,
ownership, locks, quota, fences and events the same way for all of them. It may import
``tusd_py.protocol`` (pure rules), the service's storage and lifecycle machinery and the lockers;
never ``aiohttp.web`` handlers or routes.
"""
