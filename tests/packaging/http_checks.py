"""What the packaging tests ask of an installed server: is it up, and does every /demo file load.

The demo's files are found by reading the page and its bundle, each fetched once: the page names
its stylesheet and script in index.html, the bundle names its source map and the licence file of
the libraries inside it in its closing comments, and the script asks for config.json.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin

from conformance.client import Client


def healthy(url: str) -> bool:
    """GET ``url`` (a /healthz) answers 200; False while nothing listens yet."""
    try:
        return Client(url).request("GET", url, tus=False).status == 200
    except OSError:
        return False


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


def html_references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    return parser.urls


def bundle_references(script: str) -> list[str]:
    """The files a minified esbuild bundle points at: its source map and its linked legal comments."""
    return re.findall(r"sourceMappingURL=(\S+)", script) + re.findall(
        r"license information please see (\S+) \*/", script
    )


def fetch_demo(origin: str) -> dict[str, int]:
    """GET /demo/ and every file it references, the status of each (the caller asserts 200)."""
    client = Client(origin + "/")
    statuses: dict[str, int] = {}

    def get(url: str) -> bytes:
        response = client.request("GET", url, tus=False)
        statuses[url] = response.status
        return response.body

    page = origin + "/demo/"
    assets = [urljoin(page, ref) for ref in html_references(get(page).decode())]
    assert any(url.endswith(".js") for url in assets) and any(url.endswith(".css") for url in assets), assets
    for url in assets:
        body = get(url)
        if url.endswith(".js"):
            for ref in bundle_references(body.decode()):
                get(urljoin(url, ref))
    get(urljoin(page, "config.json"))
    return statuses
