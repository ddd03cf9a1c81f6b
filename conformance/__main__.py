"""python -m conformance --url URL [--header 'Name: value' ...]

Black-box tus 1.0.0 conformance checks against any server. The extensions to test are read from
the server's OPTIONS response; a server that echoes Upload-Draft-Interop-Version on OPTIONS also
gets the IETF resumable-upload draft checks, for each interop version it echoes. Prints PASS/FAIL/SKIP per
check and a final "N passed, M failed".
"""

from __future__ import annotations

import argparse
import sys

from conformance.client import Client
from conformance.runner import print_outcome, run_checks, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the upload collection URL, e.g. http://127.0.0.1:1080/files/")
    parser.add_argument("--header", action="append", default=[], help="extra header on every request, 'Name: value'")
    args = parser.parse_args(argv)
    headers = {}
    for raw in args.header:
        name, sep, value = raw.partition(":")
        if not sep:
            parser.error(f"--header {raw!r} is not 'Name: value'")
        headers[name.strip()] = value.strip()
    outcomes = run_checks(Client(args.url, headers), print_outcome)
    print(summary(outcomes))
    return 1 if any(o.status == "fail" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
