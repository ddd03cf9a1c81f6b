import hashlib

import msgspec
import pytest

from tusd_py.cli import _parser, load_config
from tusd_py.config import Config
from tusd_py.digests import DigestCache


def test_digest_extends_only_at_its_own_offset() -> None:
    cache = DigestCache()
    first = cache.begin("u", 0)
    assert first is not None
    first.update(b"hello ")
    cache.commit("u", first, 6)
    assert cache.begin("u", 5) is None  # someone else's view of the offset: don't guess
    second = cache.begin("u", 6)
    assert second is not None
    second.update(b"world")
    cache.commit("u", second, 11)
    final = cache.pop("u")
    assert final is not None and final.hasher.hexdigest() == hashlib.sha256(b"hello world").hexdigest()


def test_uncommitted_copy_leaves_the_cached_digest_alone() -> None:
    cache = DigestCache()
    d = cache.begin("u", 0)
    assert d is not None
    d.update(b"abc")
    cache.commit("u", d, 3)
    rejected = cache.begin("u", 3)
    assert rejected is not None
    rejected.update(b"garbage")  # e.g. a checksum mismatch: never committed
    kept = cache.begin("u", 3)
    assert kept is not None and kept.hasher.hexdigest() == hashlib.sha256(b"abc").hexdigest()


def test_digest_dropped_when_store_offset_disagrees() -> None:
    cache = DigestCache()
    d = cache.begin("u", 0)
    assert d is not None
    d.update(b"abcdef")
    cache.commit("u", d, 4)  # the store kept fewer bytes than the digest saw
    assert cache.begin("u", 4) is None and cache.begin("u", 6) is None


def test_cache_is_bounded() -> None:
    cache = DigestCache(max_entries=3)
    for i in range(10):
        d = cache.begin(str(i), 0)
        cache.commit(str(i), d, 0)
    assert cache.begin("0", 0) is not None  # offset 0 always starts fresh
    assert len(cache._entries) == 3


def test_config_precedence_flag_over_env_over_default() -> None:
    args = _parser().parse_args(["--port", "2000"])
    config = load_config(args, {"TUSD_PY_PORT": "3000", "TUSD_PY_MAX_SIZE": "1024", "TUSD_PY_CORS_ORIGINS": "a, b"})
    assert config.port == 2000
    assert config.max_size == 1024
    assert config.cors_origins == ["a", "b"]
    assert load_config(_parser().parse_args([]), {}).port == 1080


def test_config_normalises_base_path_and_reads_booleans() -> None:
    config = load_config(_parser().parse_args(["--base-path", "uploads"]), {"TUSD_PY_BEHIND_PROXY": "true"})
    assert config.base_path == "/uploads/"
    assert config.behind_proxy is True


@pytest.mark.parametrize("env", [{"TUSD_PY_PORT": "x"}, {"TUSD_PY_PORT": "70000"}, {"TUSD_PY_MAX_SIZE": "-5"}])
def test_bad_config_is_refused(env: dict[str, str]) -> None:
    with pytest.raises((msgspec.ValidationError, ValueError)):
        load_config(_parser().parse_args([]), env)


def test_cli_refuses_bad_config_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    from tusd_py.cli import main

    assert main(["--port", "notaport"]) == 2
    assert "invalid configuration" in capsys.readouterr().err
    assert isinstance(Config(), Config)
