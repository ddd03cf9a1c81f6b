"""tusd's hook wire format as pure functions: the request body, and what each reply field does."""

from __future__ import annotations

import contextlib
import json

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.hooks.hook_support import event
from tusd_py.hooks.events import HookType, HTTPRequestFacts
from tusd_py.hooks.results import InvalidHookResult
from tusd_py.hooks.tusd_format import (
    TERMINATION_REJECTED,
    UPLOAD_REJECTED,
    UPLOAD_STOPPED,
    ResponsePatch,
    canonical_header_key,
    forwarded_values,
    parse_reply,
    request_body,
)

FACTS = HTTPRequestFacts(
    method="PATCH",
    uri="/files/abc123?x=1",
    remote_addr="127.0.0.1:5000",
    header={"Authorization": ["Bearer t"], "Cookie": ["s=1"], "X-Tenant": ["acme", "beta"], "Host": ["h"]},
)


def reply(value: object) -> bytes:
    return json.dumps(value).encode()


def test_pre_create_reject_merges_the_hooks_response_into_tusds_error() -> None:
    outcome = parse_reply(
        HookType.PRE_CREATE,
        reply({"RejectUpload": True, "HTTPResponse": {"StatusCode": 403, "Header": {"X-Why": "quota"}}}),
    )
    assert outcome.result.rejection is not None and outcome.result.rejection.status == 403
    assert outcome.refusal == ResponsePatch(
        status=403, body=UPLOAD_REJECTED.body, headers={"Content-Type": "text/plain; charset=utf-8", "X-Why": "quota"}
    )
    bare = parse_reply(HookType.PRE_CREATE, reply({"RejectUpload": True}))
    assert bare.refusal == UPLOAD_REJECTED and UPLOAD_REJECTED.status == 400
    assert UPLOAD_REJECTED.body == "ERR_UPLOAD_REJECTED: upload creation has been rejected by server\n"


def test_keys_match_in_any_case_and_unknown_ones_are_ignored_as_go_does() -> None:
    outcome = parse_reply(
        HookType.PRE_CREATE,
        reply({"changeFileInfo": {"id": "new-id", "METADATA": {"a": "1", "b": None}}, "Headers": {}, "Extra": 1}),
    )
    assert outcome.result.change is not None
    assert outcome.result.change.upload_id == "new-id"
    assert outcome.result.change.metadata == {"a": b"1", "b": b""}  # Go: a null string is ""
    # tusd's own example sends HTTPResponse.Headers (not Header): tusd ignores it, so do we.
    ignored = parse_reply(HookType.PRE_CREATE, reply({"HTTPResponse": {"Headers": {"X-A": "1"}}}))
    assert ignored.response == ResponsePatch()


def test_change_file_info_keeps_what_it_does_not_name() -> None:
    assert parse_reply(HookType.PRE_CREATE, reply({"ChangeFileInfo": {}})).result.change is None
    only_metadata = parse_reply(HookType.PRE_CREATE, reply({"ChangeFileInfo": {"ID": "", "MetaData": {}}}))
    assert only_metadata.result.change is not None
    assert only_metadata.result.change.upload_id is None and only_metadata.result.change.metadata == {}
    storage = parse_reply(HookType.PRE_CREATE, reply({"ChangeFileInfo": {"Storage": {"Path": "x/y"}}}))
    assert storage.ignored_storage and storage.result.change is None


def test_each_flag_counts_only_on_its_own_hook() -> None:
    everything = reply({"RejectUpload": True, "RejectTermination": True, "StopUpload": True})
    assert parse_reply(HookType.PRE_FINISH, everything).result.rejection is None
    assert not parse_reply(HookType.POST_FINISH, everything).stop
    terminate = parse_reply(HookType.PRE_TERMINATE, everything)
    assert terminate.refusal == TERMINATION_REJECTED and terminate.result.rejection is not None
    stop = parse_reply(HookType.POST_RECEIVE, reply({"StopUpload": True, "HTTPResponse": {"Body": "gone"}}))
    assert stop.stop and stop.refusal == UPLOAD_STOPPED.merge(ResponsePatch(body="gone"))
    assert parse_reply(HookType.POST_CREATE, everything).refusal is None


def test_pre_finish_shapes_the_answer_and_cannot_refuse() -> None:
    outcome = parse_reply(HookType.PRE_FINISH, reply({"HTTPResponse": {"StatusCode": 200, "Body": "{}"}}))
    assert outcome.response == ResponsePatch(status=200, body="{}")
    assert outcome.result.rejection is None and outcome.refusal is None


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        reply({"RejectUpload": "yes"}),
        reply({"HTTPResponse": {"StatusCode": 9000}}),
        reply({"HTTPResponse": {"Header": {"X-A": "a\r\nSet-Cookie: x=1"}}}),
        reply({"HTTPResponse": {"Header": {"Bad Name": "v"}}}),
        reply({"ChangeFileInfo": {"ID": "../../etc"}}),
        reply({"ChangeFileInfo": {"MetaData": {"bad key": "v"}}}),
    ],
)
def test_what_tusd_py_must_not_act_on_is_an_invalid_answer(body: bytes) -> None:
    with pytest.raises(InvalidHookResult):
        parse_reply(HookType.PRE_CREATE, body)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
    )
)
def test_any_json_reply_is_an_outcome_or_an_invalid_answer(value: object) -> None:
    for hook_type in HookType:
        with contextlib.suppress(InvalidHookResult):
            parse_reply(hook_type, json.dumps(value).encode())


def test_empty_reply_changes_nothing() -> None:
    outcome = parse_reply(HookType.PRE_CREATE, b"")
    assert outcome.result.rejection is None and outcome.result.change is None and outcome.response is None


def test_request_body_is_tusds_hook_request() -> None:
    ev = msgspec.structs.replace(event(HookType.POST_RECEIVE, length=None, offset=7), http_request=FACTS)
    body = json.loads(request_body(ev, durable=False))
    assert body["Type"] == "post-receive"
    upload = body["Event"]["Upload"]
    assert upload["ID"] == "abc123" and upload["Size"] == 0 and upload["SizeIsDeferred"] and upload["Offset"] == 7
    assert upload["MetaData"] == {"filename": "a.txt", "blob": "\ufffd\x00", "empty": ""}
    assert upload["IsPartial"] is False and upload["PartialUploads"] is None and upload["Storage"] is None
    assert body["Event"]["HTTPRequest"] == {
        "Method": "PATCH",
        "URI": "/files/abc123?x=1",
        "RemoteAddr": "127.0.0.1:5000",
        "Header": FACTS.header,
    }
    assert json.loads(request_body(event(HookType.PRE_CREATE), durable=False))["Event"]["Upload"]["ID"] == ""


def test_stored_bodies_leave_credentials_out_unless_forwarded() -> None:
    ev = msgspec.structs.replace(event(HookType.POST_CREATE), http_request=FACTS)
    stored = json.loads(request_body(ev, durable=True, forwarded=frozenset({"cookie"})))["Event"]["HTTPRequest"]
    assert set(stored["Header"]) == {"Cookie", "X-Tenant", "Host"}
    assert forwarded_values(request_body(ev, durable=True), ["x-tenant", "Authorization"]) == {"x-tenant": "acme, beta"}


def test_storage_and_concatenation_read_as_tusds_stores_say_them() -> None:
    s3 = event(HookType.POST_FINISH, concat="final", partials=["p1", "p2"])
    s3 = msgspec.structs.replace(
        s3, upload=msgspec.structs.replace(s3.upload, storage={"type": "s3", "bucket": "b", "key": "k/x"})
    )
    upload = json.loads(request_body(s3, durable=True))["Event"]["Upload"]
    assert upload["Storage"] == {"Type": "s3store", "Bucket": "b", "Key": "k/x"}
    assert upload["IsFinal"] and upload["PartialUploads"] == ["p1", "p2"]
    assert json.loads(request_body(s3, durable=True))["Event"]["HTTPRequest"]["Method"] == ""


def test_canonical_header_key_is_gos() -> None:
    assert canonical_header_key("x-tenant-ID") == "X-Tenant-Id"
    assert canonical_header_key("upload-metadata") == "Upload-Metadata"
    assert canonical_header_key("bad name") == "bad name"
