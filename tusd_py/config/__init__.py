"""Configuration: the ``Config`` value (``values``), every flag defined once (``options``), how flags,
``TUSD_PY_*`` variables and a config file combine (``loading``), and tusd's spellings (``tusd_flags``).

Layer 0: a plain value and its parsing; imports nothing of tusd-py, so any layer may read it.
"""
