"""The override and exemption rules, as pure functions: every wire method x every override."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tusd_py.model.errors import TusError
from tusd_py.protocol.operation import OVERRIDE_TARGETS, resolve_operation

WIRE_METHODS = ["GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS", "PUT", "TRACE"]
OVERRIDES = [None, "GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS", "patch", " DELETE ", "", "PUT", "bogus"]


@pytest.mark.parametrize("wire", WIRE_METHODS)
@pytest.mark.parametrize("override", OVERRIDES)
def test_only_post_carries_an_override_and_only_to_known_targets(wire: str, override: str | None) -> None:
    if override is None:
        operation = resolve_operation(wire, None, tus_route=True, public_route=False)
        assert (operation.method, operation.wire_method, operation.overridden) == (wire, wire, False)
        return
    valid = wire == "POST" and override.strip().upper() in OVERRIDE_TARGETS
    if not valid:
        with pytest.raises(TusError) as caught:
            resolve_operation(wire, override, tus_route=True, public_route=False)
        assert caught.value.status == 400 and "X-HTTP-Method-Override" in caught.value.reason
        return
    operation = resolve_operation(wire, override, tus_route=True, public_route=False)
    assert operation.method == override.strip().upper()
    assert operation.wire_method == "POST"
    assert not operation.public  # an overridden request is never exempt from auth


@pytest.mark.parametrize("override", ["GET", "HEAD", "PATCH", "DELETE", "POST"])
def test_the_override_is_refused_off_the_tus_routes(override: str) -> None:
    for public in (False, True):
        with pytest.raises(TusError) as caught:
            resolve_operation("POST", override, tus_route=False, public_route=public)
        assert caught.value.status == 400 and "tus upload URLs" in caught.value.reason


@pytest.mark.parametrize("wire", WIRE_METHODS)
def test_public_means_a_plain_options_or_a_public_route(wire: str) -> None:
    assert resolve_operation(wire, None, tus_route=True, public_route=False).public == (wire == "OPTIONS")
    assert resolve_operation(wire, None, tus_route=False, public_route=True).public


@given(wire=st.sampled_from(WIRE_METHODS), override=st.text(max_size=30), tus=st.booleans(), pub=st.booleans())
def test_a_request_that_resolves_with_an_override_is_never_public(
    wire: str, override: str, tus: bool, pub: bool
) -> None:
    try:
        operation = resolve_operation(wire, override, tus_route=tus, public_route=pub)
    except TusError as exc:
        assert exc.status == 400
        return
    assert operation.wire_method == "POST" and tus and not operation.public
