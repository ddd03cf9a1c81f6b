"""tusd-py: a tus resumable-upload server."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tusd-py")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
