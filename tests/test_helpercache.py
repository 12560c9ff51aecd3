"""The credential helper's token cache (auth/helpercache.py), through the helper: a token
is never served within SAFETY of its expiry, and a profile's changed keys miss the cache."""

from __future__ import annotations

import json

import pytest

from runas_async.credhelper import Helper
from tests.faults import ApiFaultProxy
from tests.sandbox import DEFAULT_ACCOUNT, STATIC_KEYS, Moto, ecr_host, moto_password
from tests.test_credhelper import HOUR, _Fetches, _get, _helper

HOST = ecr_host(DEFAULT_ACCOUNT, "us-west-2")


@pytest.mark.parametrize("before_expiry", [30.0, 1.0])
def test_a_token_about_to_expire_is_never_served(moto: Moto, before_expiry: float) -> None:
    """Within a minute of its expiry (SAFETY) a cached token counts as expired: a failed refresh
    fails the get rather than hand docker a token that dies during the pull."""
    moto.write_aws_config({"default": {"region": "us-west-2", **STATIC_KEYS}})
    clock = [1_000_000.0]
    fetches = _Fetches(clock)
    helper = Helper(moto.env(), clock=lambda: clock[0], fetch=fetches)
    assert _get(helper)[0] == 0
    fetches.fail = True
    clock[0] += 12 * HOUR - before_expiry
    code, out = _get(helper)
    assert code == 1, out
    assert "pw-1" not in out


def test_new_keys_in_the_credentials_file_miss_the_cache(moto: Moto) -> None:
    """A profile whose keys change in ~/.aws/credentials gets a token fetched with the new
    keys, not the one cached for the old."""
    moto.write_aws_config({"dev": {"region": "us-west-2"}})
    mapping = moto.workdir / "registries.toml"
    mapping.write_text('[[login]]\nprofile = "dev"\nregistries = ["*.dkr.ecr.*.amazonaws.com"]\n')
    other_keys = {"aws_access_key_id": "AKIAOTHERKEYS000000", "aws_secret_access_key": "x" * 40}
    with ApiFaultProxy(moto.moto_url, expires_in=12 * HOUR) as proxy:
        env = moto.env(AWS_ENDPOINT_URL=proxy.url, RUNAS_ASYNC_REGISTRIES=str(mapping))
        for keys in (STATIC_KEYS, other_keys):
            moto.write_aws_credentials({"dev": keys})
            done = _helper("get", HOST, env)
            assert done.returncode == 0, done.stdout + done.stderr
            assert json.loads(done.stdout)["Secret"] == moto_password(DEFAULT_ACCOUNT)
    keys_used = [c.access_key for c in moto.moto_calls() if c.operation == "GetAuthorizationToken"]
    assert keys_used == [STATIC_KEYS["aws_access_key_id"], other_keys["aws_access_key_id"]]
