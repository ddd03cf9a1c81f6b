"""schemathesis over the Recordings API's own OpenAPI document, against a real server, auth on.

Every operation, with data the document allows (each must be accepted) and data it refuses
(each must be refused with a 4xx), through schemathesis' checks: no 5xx, the status, content
type, headers and body as documented.
"""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import given, seed
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.schemas import APIOperation

from tests.fuzz.conftest import fuzz_settings
from tests.fuzz.runner import OWNER, Server, token

pytestmark = pytest.mark.timeout(3600)


def _operations(server: Server) -> list[APIOperation]:
    # The test sends a valid token itself; generated (or removed) Authorization headers would make
    # schemathesis expect a refusal of a request that reaches the server well-formed.
    config = SchemathesisConfig.from_dict({"generation": {"with-security-parameters": False}})
    schema = schemathesis.openapi.from_url(f"http://{server.host}/api/openapi.json", config=config)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_openapi_fuzz(auth_server: Server, fuzz_seed: int | None, fuzz_profile: str, mode: GenerationMode) -> None:
    operations = _operations(auth_server)
    assert len(operations) == 8, [op.label for op in operations]
    auth = {"Authorization": f"Bearer {token(OWNER)}"}
    with requests.Session() as session:
        for operation in operations:
            if mode is GenerationMode.NEGATIVE and not list(operation.iter_parameters()):
                continue  # nothing to make invalid (hypothesis would call it unsatisfiable)

            @fuzz_settings(fuzz_profile, scale=0.25)
            @given(case=operation.as_strategy(generation_mode=mode))
            def fuzz(case: schemathesis.Case) -> None:
                case.call_and_validate(session=session, headers=auth, timeout=10)

            if fuzz_seed is not None:
                fuzz = seed(fuzz_seed)(fuzz)
            fuzz()
