import pytest
from hypothesis import given
from hypothesis import strategies as st

from tusd_py.model.errors import TusError
from tusd_py.protocol.decisions import decide_creation, decide_download, decide_patch


def creation(**kw: object):  # type: ignore[no-untyped-def]
    args = {
        "upload_length": None,
        "defer_length": None,
        "content_length": None,
        "max_size": None,
        "defer_supported": True,
    }
    args.update(kw)
    return decide_creation(**args)  # type: ignore[arg-type]


def patch(**kw: object):  # type: ignore[no-untyped-def]
    args = {"stored_offset": 0, "stored_length": 10, "client_offset": 0, "upload_length": None,
            "content_length": None, "max_size": None}  # fmt: skip
    args.update(kw)
    return decide_patch(**args)  # type: ignore[arg-type]


def status_of(func, **kw: object) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(TusError) as caught:
        func(**kw)
    return caught.value.status


def test_creation_needs_exactly_one_of_length_or_defer() -> None:
    assert creation(upload_length="5").length == 5
    assert creation(defer_length="1").length is None
    assert status_of(creation) == 400
    assert status_of(creation, upload_length="5", defer_length="1") == 400


def test_creation_defer_refused_when_unsupported() -> None:
    assert status_of(creation, defer_length="1", defer_supported=False) == 400


def test_creation_over_max_size_is_413_at_the_boundary() -> None:
    assert creation(upload_length="100", max_size=100).length == 100
    assert status_of(creation, upload_length="101", max_size=100) == 413


def test_creation_body_longer_than_length_is_413() -> None:
    assert status_of(creation, upload_length="3", content_length="4") == 413
    assert creation(upload_length="3", content_length="3").body_bytes == 3


def test_patch_offset_must_match_and_409_tells_the_current_offset() -> None:
    assert status_of(patch, stored_offset=4, client_offset=3) == 409
    assert status_of(patch, stored_offset=4, client_offset=5) == 409
    with pytest.raises(TusError) as caught:
        patch(stored_offset=4, client_offset=0)
    assert caught.value.headers == {"Upload-Offset": "4"}


def test_patch_body_limit_is_the_remaining_length() -> None:
    assert patch(stored_offset=4, client_offset=4).max_bytes == 6
    assert status_of(patch, stored_offset=4, client_offset=4, content_length="7") == 413
    assert patch(stored_offset=4, client_offset=4, content_length="6").body_bytes == 6


def test_patch_declares_deferred_length_once() -> None:
    plan = patch(stored_length=None, stored_offset=3, client_offset=3, upload_length="10")
    assert plan.new_length == 10 and plan.max_bytes == 7
    assert status_of(patch, stored_length=None, stored_offset=3, client_offset=3, upload_length="2") == 400
    assert status_of(patch, stored_length=10, upload_length="11") == 400
    assert patch(stored_length=10, upload_length="10").new_length is None


def test_patch_deferred_length_bounded_by_max_size() -> None:
    assert patch(stored_length=None, stored_offset=3, client_offset=3, max_size=100).max_bytes == 97
    assert status_of(patch, stored_length=None, upload_length="101", max_size=100) == 413


@given(
    length=st.integers(0, 10**12),
    offset_fraction=st.floats(0, 1),
    body=st.integers(0, 10**12),
)
def test_patch_never_allows_writing_past_the_length(length: int, offset_fraction: float, body: int) -> None:
    offset = int(length * offset_fraction)
    try:
        plan = patch(stored_offset=offset, client_offset=offset, stored_length=length, content_length=str(body))
    except TusError as exc:
        assert exc.status == 413 and offset + body > length
    else:
        assert offset + plan.max_bytes == length and offset + body <= length


def test_download_only_when_finished() -> None:
    decide_download(offset=5, length=5)
    assert status_of(decide_download, offset=4, length=5) == 409
    assert status_of(decide_download, offset=0, length=None) == 409
