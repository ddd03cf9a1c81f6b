"""tuspyserver peer: its FastAPI router, mounted at /files, run by uvicorn from bench/run.py.

The upload directory comes from ``TUSPYSERVER_DIR``; files land as ``<dir>/<upload id>``. This
file runs in its own venv (bench/.work/tuspy-venv), never in the project's.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from tuspyserver import create_tus_router

app = FastAPI()
app.include_router(create_tus_router(prefix="files", files_dir=os.environ["TUSPYSERVER_DIR"]))
