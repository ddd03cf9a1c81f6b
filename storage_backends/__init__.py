"""Storage backends: one interface (``base.DataStore``) and its implementations, filesystem and S3.

Layer 2: backends know nothing of HTTP, locks or users; they may import ``tusd_py.model`` (the
upload value, fences, storage failures), ``tusd_py.protocol`` and ``tusd_py.telemetry``.
"""
