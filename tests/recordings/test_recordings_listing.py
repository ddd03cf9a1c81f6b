"""Listing, pagination, the status filter, the queue and stats, with processing off (``workers=0``)
so every recording stays in the status the test put it in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.recordings.conftest import Api, Client, ClientFactory, make_config, open_api, start_upload, upload
from tusd_py.server.app import make_app

LIST = "/api/recordings"


@pytest.fixture
async def client(aiohttp_client: ClientFactory, tmp_path: Path, state_store: dict[str, str]) -> Client:
    return await aiohttp_client(make_app(make_config(tmp_path, **state_store, workers=0)))


@pytest.fixture
async def api(client: Client) -> Api:
    return await open_api(client)


async def ids(api: Api, **params: str) -> list[str]:
    page = await api.get(LIST, params=params)
    return [item["id"] for item in page["items"]]


async def test_empty_list(api: Api) -> None:
    assert await api.get(LIST) == {"items": [], "next_cursor": None}
    assert await api.get(LIST, params={"status": "failed", "limit": "1"}) == {"items": [], "next_cursor": None}


async def test_pages_newest_first_with_cursors(client: Client, api: Api) -> None:
    created = [await start_upload(client, 10) for _ in range(5)]
    newest_first = created[::-1]

    whole = await api.get(LIST, params={"limit": "5"})  # exactly one page: no cursor
    assert [item["id"] for item in whole["items"]] == newest_first and whole["next_cursor"] is None
    stamps = [item["created_at"] for item in whole["items"]]
    assert stamps == sorted(stamps, reverse=True)
    assert await ids(api) == newest_first  # default limit 50

    seen: list[str] = []
    sizes: list[int] = []
    cursor: str | None = None
    for _ in range(5):  # bounded: 3 pages expected
        params = {"limit": "2"} if cursor is None else {"limit": "2", "cursor": cursor}
        page = await api.get(LIST, params=params)
        seen += [item["id"] for item in page["items"]]
        sizes.append(len(page["items"]))
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sizes == [2, 2, 1] and seen == newest_first

    # A cursor keeps working when newer recordings arrive: the next page does not shift.
    first = await api.get(LIST, params={"limit": "2"})
    await start_upload(client, 10)
    second = await api.get(LIST, params={"limit": "2", "cursor": first["next_cursor"]})
    assert [item["id"] for item in second["items"]] == newest_first[2:4]


@pytest.mark.parametrize("cursor", ["!!!", "e30", "WzEsIDJd", "", "x" * 300, "0", "1~", "~a", "1.5~a/b"])
async def test_a_cursor_the_document_refuses_is_400(api: Api, cursor: str) -> None:
    assert "cursor" in await api.get(LIST, params={"cursor": cursor}, expect=400)
    assert not re.fullmatch(_cursor_form(api), cursor), "a cursor the document allows must not be refused"


def _cursor_form(api: Api) -> str:
    """The document's cursor pattern as a Python regex for fullmatch (JSON Schema's $ is the very end)."""
    parameter = api.document["paths"][LIST]["get"]["parameters"][2]
    assert parameter["name"] == "cursor"
    pattern: str = parameter["schema"]["pattern"]
    assert pattern.startswith("^") and pattern.endswith("$")
    return pattern[1:-1]


async def test_every_cursor_the_document_allows_is_a_position(client: Client, api: Api) -> None:
    """The schemathesis finding: ``cursor=0`` fitted the document (any non-empty string) yet got 400.
    The document now gives the cursor's form, and every cursor of that form lists from there on."""
    made = [await start_upload(client, 10) for _ in range(3)]
    pattern = _cursor_form(api)
    for cursor in ("0~a", "1e+99~z", "0.5~-", f"9999999999~{'_' * 128}"):
        assert re.fullmatch(pattern, cursor)
        everything_after = await ids(api, cursor=cursor)
        assert everything_after == ([] if cursor.startswith(("0~", "0.5~")) else made[::-1])

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(cursor=st.from_regex(pattern, fullmatch=True))
    def check(cursor: str) -> None:
        # Sync hypothesis inside an async test: one event loop, so the calls go through it below.
        cursors.append(cursor)

    cursors: list[str] = []
    check()
    for cursor in cursors:
        await api.get(LIST, params={"cursor": cursor})  # 200, and the page validates against the schema


@pytest.mark.parametrize("limit", ["0", "201", "abc", "-1", "1.5", "", " 5", "+5", "9" * 5000])
async def test_a_limit_out_of_range_is_400(api: Api, limit: str) -> None:
    assert await api.get(LIST, params={"limit": limit}, expect=400) == "limit must be an integer from 1 to 200\n"
    assert "limit" in await api.get("/api/queue", params={"limit": limit}, expect=400)


async def test_limit_bounds_are_accepted(client: Client, api: Api) -> None:
    await start_upload(client, 10)
    assert len(await ids(api, limit="1")) == 1
    assert len(await ids(api, limit="200")) == 1


async def test_status_filter(client: Client, api: Api, wav: bytes) -> None:
    recorded = [await start_upload(client, 10), await start_upload(client, 10)]
    uploading = await start_upload(client, 100, b"x" * 30)
    uploaded = [await upload(client, wav), await upload(client, wav)]
    await api.wait_for(uploading, "uploading", within=5)

    assert await ids(api, status="recorded") == recorded[::-1]
    assert await ids(api, status="uploaded") == uploaded[::-1]
    assert await ids(api, status="uploading") == [uploading]
    assert await ids(api, status="failed") == []
    both = await api.get(LIST, params={"status": "uploaded,uploading"})
    assert [item["id"] for item in both["items"]] == [*uploaded[::-1], uploading]
    repeated = await api.get(LIST, params=[("status", "recorded"), ("status", "uploading")])
    assert {item["id"] for item in repeated["items"]} == {*recorded, uploading}

    # The filter and the cursor combine: page through the uploaded ones only.
    page = await api.get(LIST, params={"status": "uploaded", "limit": "1"})
    assert [item["id"] for item in page["items"]] == [uploaded[1]]
    page = await api.get(LIST, params={"status": "uploaded", "limit": "1", "cursor": page["next_cursor"]})
    assert [item["id"] for item in page["items"]] == [uploaded[0]] and page["next_cursor"] is None

    for bad in ("bogus", "", "failed,", "COMPLETED"):
        assert "unknown status" in await api.get(LIST, params={"status": bad}, expect=400)


async def test_queue_and_stats(client: Client, api: Api, wav: bytes) -> None:
    assert await api.get("/api/queue") == {"jobs": []}
    uploaded = [await upload(client, wav), await upload(client, wav)]
    partial = await start_upload(client, 100, b"y" * 25)
    await start_upload(client, 50)
    await api.wait_for(partial, "uploading", within=5)

    jobs = (await api.get("/api/queue"))["jobs"]
    assert [job["upload_id"] for job in jobs] == uploaded  # soonest first
    assert all(job["status"] == "queued" and job["attempts"] == 0 and job["claimed_at"] is None for job in jobs)
    assert len((await api.get("/api/queue", params={"limit": "1"}))["jobs"]) == 1

    stats = await api.get("/api/stats")
    assert stats["by_status"] == {
        "recorded": {"count": 1, "bytes": 0},
        "uploading": {"count": 1, "bytes": 25},
        "uploaded": {"count": 2, "bytes": 2 * len(wav)},
        "processing": {"count": 0, "bytes": 0},
        "completed": {"count": 0, "bytes": 0},
        "failed": {"count": 0, "bytes": 0},
    }
    assert stats["total_count"] == 4 and stats["total_bytes"] == 2 * len(wav) + 25
    assert stats["quota"] is None  # auth off: no users, no quotas


async def test_a_query_parameter_the_operation_does_not_list_is_400(api: Api) -> None:
    """schemathesis' negative mode: ``?stauts=failed`` used to list everything, silently."""
    document = api.document
    for template, item in document["paths"].items():
        for method in (m for m in item if m != "parameters"):
            url = template.format(upload_id="0" * 22)
            reason = await api.call(method.upper(), template, upload_id="0" * 22, params={"stauts": "x"}, expect=400)
            assert "unknown query parameter 'stauts'" in reason, (method, url)
    assert await ids(api, status="failed", limit="5") == []
