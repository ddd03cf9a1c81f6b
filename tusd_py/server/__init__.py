"""The process: the command line, building the app from a ``Config`` (``wiring``, ``app``), start-up
checks, serving one port, worker processes, connection handling and TLS.

Layer 7, the top: the only package that may import all the others; nothing imports it.
"""
