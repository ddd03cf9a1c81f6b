from tusd_py.http.cors import EXPOSED_HEADERS, allowed_origin, cors_headers, is_preflight
from tusd_py.protocol.urls import external_base, parse_forwarded


def base(headers: dict[str, str], behind_proxy: bool = True, host: str = "10.0.0.5:1080") -> str:
    return external_base(scheme="http", host=host, base_path="/files/", headers=headers, behind_proxy=behind_proxy)


def test_direct_requests_use_the_host_header() -> None:
    assert base({}, behind_proxy=False) == "http://10.0.0.5:1080/files/"


def test_forwarding_headers_ignored_unless_trusted() -> None:
    headers = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
    assert base(headers, behind_proxy=False) == "http://10.0.0.5:1080/files/"


def test_x_forwarded_host_proto_and_prefix() -> None:
    headers = {"X-Forwarded-Host": "uploads.example.com", "X-Forwarded-Proto": "https", "X-Forwarded-Prefix": "/api/"}
    assert base(headers) == "https://uploads.example.com/api/files/"


def test_forwarded_header_wins_and_first_element_is_used() -> None:
    headers = {
        "Forwarded": 'for=1.2.3.4;proto=https;host="a.example:8443", for=5.6.7.8;host=b',
        "X-Forwarded-Host": "x",
    }
    assert base(headers) == "https://a.example:8443/files/"
    assert parse_forwarded("For=x;Proto=HTTPS") == {"for": "x", "proto": "HTTPS"}


def test_forged_forwarding_values_are_not_echoed() -> None:
    headers = {
        "X-Forwarded-Host": "a.example/evil?x=",
        "X-Forwarded-Proto": "javascript",
        "X-Forwarded-Prefix": "//x\r\n",
    }
    assert base(headers) == "http://10.0.0.5:1080/files/"


def test_garbage_host_falls_back_to_localhost() -> None:
    assert base({}, behind_proxy=False, host="a b") == "http://localhost/files/"


def test_cors_origin_matching() -> None:
    assert allowed_origin("https://app.example", ["*"]) == "*"
    assert allowed_origin("https://app.example", ["https://app.example"]) == "https://app.example"
    assert allowed_origin("https://evil.example", ["https://app.example"]) is None
    assert allowed_origin(None, ["*"]) is None


def test_preflight_detection_and_headers() -> None:
    assert is_preflight("OPTIONS", {"Origin": "x", "Access-Control-Request-Method": "PATCH"})
    assert not is_preflight("OPTIONS", {"Origin": "x"})
    headers = cors_headers("https://app.example", preflight=True)
    assert headers["Vary"] == "Origin"
    assert "PATCH" in headers["Access-Control-Allow-Methods"]
    assert "Upload-Offset" in headers["Access-Control-Allow-Headers"]
    for name in ("Location", "Upload-Offset", "Upload-Length", "Upload-Metadata", "Tus-Resumable", "Upload-Expires"):
        assert name in EXPOSED_HEADERS


def test_tusds_cors_settings() -> None:
    from tusd_py.http.cors import CorsPolicy

    pattern = CorsPolicy.build(pattern=r"^https://(app|admin)\.example$", credentials=True, max_age=600)
    assert allowed_origin("https://admin.example", policy=pattern) == "https://admin.example"
    assert allowed_origin("https://app.example.evil", policy=pattern) is None
    unanchored = CorsPolicy.build(pattern=r"app\.example")  # searched, as tusd's MatchString does
    assert allowed_origin("https://app.example.evil", policy=unanchored) == "https://app.example.evil"
    # Credentials never go with "*": the origin is echoed.
    assert allowed_origin("https://x.example", policy=CorsPolicy.build(credentials=True)) == "https://x.example"
    assert allowed_origin("https://x.example", policy=CorsPolicy.build(disabled=True)) is None
    preflight = cors_headers("https://app.example", preflight=True, policy=pattern)
    assert preflight["Access-Control-Allow-Credentials"] == "true" and preflight["Access-Control-Max-Age"] == "600"
    extra = CorsPolicy.build(allow_headers=["X-Tenant", "upload-offset"], expose_headers=["X-Out"], methods=["PUT"])
    allowed = cors_headers("*", preflight=True, policy=extra)["Access-Control-Allow-Headers"]
    assert allowed.endswith(", X-Tenant") and allowed.lower().count("upload-offset") == 1
    assert cors_headers("*", preflight=True, policy=extra)["Access-Control-Allow-Methods"].endswith(", PUT")
    assert cors_headers("*", preflight=False, policy=extra)["Access-Control-Expose-Headers"].endswith(", X-Out")
