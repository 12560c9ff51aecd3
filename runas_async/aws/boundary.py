"""The one boundary where botocore's and aiobotocore's exceptions become ours (errors.py).

Modelled on httpx's ``map_exceptions``: code that calls botocore runs inside
:func:`map_aws_errors`, saying what it is doing and for which profile; what comes out is
one of :mod:`runas_async.core.errors`, with a one-line message naming the profile. Our own
errors pass through unchanged, and anything not listed here goes out as it came (a bug).

=======================  =====================================  ============================
doing                    botocore (or the library under it)     becomes
=======================  =====================================  ============================
READING_CONFIG           ``BotoCoreError`` (ConfigParseError,   ConfigError
                         ProfileNotFound, ...)
RESOLVING                ``ProfileNotFound``                    ProfileNotFound
                         ``ClientError``, ``BotoCoreError``     CredentialsError
                         ``JSONDecodeError`` (credential_       CredentialsError
                         process printed no JSON)
                         ``OSError`` (credential_process
                         cannot start)                          CredentialsError
                         ``ValueError`` (a container token      CredentialsError
                         with a line break; also CALLING)
                         ``LoginRefreshRequired``,              CredentialsError: run
                         ``LoginTokenLoadError`` (aws login;    aws login
                         also CALLING), ``MissingDependency``
                         (no awscrt for a login_session)
FETCHING_CREDENTIALS     ``ClientError`` (AssumeRole,           CredentialsError
                         GetSessionToken)
CALLING                  ``ClientError`` with a code of         CredentialsError
                         :data:`REJECTED_CREDENTIALS`
                         other ``ClientError``,                 TokenError
                         ``BotoCoreError``
=======================  =====================================  ============================
"""

from __future__ import annotations

import contextlib
import enum
import json
from collections.abc import Callable, Iterator

import botocore.exceptions as bx

from runas_async.core.errors import (
    ConfigError,
    CredentialsError,
    ProfileNotFound,
    RunasError,
    TokenError,
)
from runas_async.core.sanitize import clean, show

REJECTED_CREDENTIALS = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "AuthFailure",
        "RequestExpired",
    }
)
"""Error codes that mean "these credentials are not accepted at all": the profile is
misconfigured, not one registry."""


class Doing(enum.Enum):
    """What the code inside :func:`map_aws_errors` is doing; it decides what an error becomes."""

    READING_CONFIG = "reading the profile's settings"
    RESOLVING = "resolving the profile's credentials"
    FETCHING_CREDENTIALS = "an STS call on the way to the profile's credentials"
    CALLING = "an API call with the profile's credentials"


@contextlib.contextmanager
def map_aws_errors(
    *, profile: str, what: str | None = None, doing: Doing = Doing.CALLING
) -> Iterator[None]:
    """Translate the botocore errors raised inside into ours (see the module's table).

    ``what`` completes the message: for READING_CONFIG the action before the profile
    (``"read the region of"``: *cannot read the region of profile 'p': ...*), otherwise the
    call (``"GetCallerIdentity in us-east-1"``). RESOLVING needs none.
    """
    try:
        yield
    except RunasError:
        raise
    except Exception as e:
        mapped = translate(e, profile=profile, what=what, doing=doing)
        if mapped is None:
            raise
        raise mapped from e


def translate(
    e: Exception, *, profile: str, what: str | None = None, doing: Doing = Doing.CALLING
) -> RunasError | None:
    """Our error for ``e`` met while ``doing`` for ``profile``; None when it is not one we map."""
    return _TRANSLATIONS[doing](e, show(profile), what or "the call")


def _reading_config(e: Exception, who: str, what: str) -> RunasError | None:
    if isinstance(e, bx.BotoCoreError):
        return ConfigError(f"cannot {what} profile {who}: {describe(e)}")
    return None


def _resolving(e: Exception, who: str, what: str) -> RunasError | None:
    cannot = f"cannot get credentials for profile {who}"
    if isinstance(e, bx.ProfileNotFound):
        return ProfileNotFound(f"profile {who}: {e}")
    special = _credential_source_error(e, who)
    if special is not None:
        return special
    if isinstance(e, bx.ConnectionError | bx.HTTPClientError):
        return CredentialsError(f"{cannot}: {describe(e)}{_network_hint(e)}")
    if isinstance(e, json.JSONDecodeError):
        # botocore's credential_process provider lets these through untranslated.
        return CredentialsError(
            f"{cannot}: credential_process printed something that is not JSON ({clean(str(e))})"
        )
    if isinstance(e, bx.BotoCoreError | bx.ClientError | OSError):
        # OSError: a credential_process program that cannot be started.
        return CredentialsError(f"{cannot}: {describe(e)}")
    return None


def _fetching_credentials(e: Exception, who: str, what: str) -> RunasError | None:
    if isinstance(e, bx.ClientError):
        hint = ""
        if error_code(e) == "AccessDenied":
            hint = ": check the role's trust policy and the source's permission to assume it"
        return CredentialsError(f"{what} for profile {who} failed: {describe(e)}{hint}")
    return None  # anything else: the RESOLVING boundary around it


def _calling(e: Exception, who: str, what: str) -> RunasError | None:
    if isinstance(e, bx.ClientError) and error_code(e) in REJECTED_CREDENTIALS:
        return CredentialsError(
            f"the credentials of profile {who} were rejected (expired or invalid): "
            f"{describe(e)}: renew them, or check the keys in the environment or the profile"
        )
    special = _credential_source_error(e, who)
    if special is not None:
        return special
    if isinstance(e, bx.ClientError | bx.BotoCoreError):
        return TokenError(f"{what} for profile {who}: {describe(e)}{_network_hint(e)}")
    return None


EXPIRED_ON_ARRIVAL = "refreshed credentials are still expired"
"""botocore's RuntimeError text for a credential source that hands over expired credentials."""
ILLEGAL_HEADER = "not a legal header value"
"""botocore's ValueError text for a container credentials token with a line break in it."""


def _credential_source_error(e: Exception, who: str) -> RunasError | None:
    """Errors of the credential sources themselves, each with what to do about it."""
    if isinstance(e, bx.NoCredentialsError):
        return CredentialsError(no_credentials(who))
    if isinstance(e, bx.UnauthorizedSSOTokenError | bx.SSOTokenLoadError) or (
        isinstance(e, bx.TokenRetrievalError) and e.kwargs.get("provider") == "sso"
    ):
        name = who.strip("'\"")
        return CredentialsError(
            f"the SSO session of profile {who} has expired or is not signed in: "
            f"run aws sso login --profile {name}"
        )
    login = _aws_login_error(e, who)
    if login is not None:
        return login
    if isinstance(e, bx.CredentialRetrievalError) and "process" in str(e.kwargs.get("provider")):
        return CredentialsError(
            f"the credential_process of profile {who} failed: "
            f"{_last_line(str(e.kwargs.get('error_msg') or e))}"
        )
    if isinstance(e, ValueError) and ILLEGAL_HEADER in str(e):
        return CredentialsError(
            f"the container credentials token of profile {who} (the file named by "
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, or AWS_CONTAINER_AUTHORIZATION_TOKEN) "
            "holds a line break, which no HTTP header can carry: write the token on one line "
            "with no newline at the end"
        )
    if isinstance(e, RuntimeError) and EXPIRED_ON_ARRIVAL in str(e):
        return CredentialsError(
            f"the credentials of profile {who} had already expired when their source "
            "(credential_process, container or instance endpoint) handed them over: "
            "renew them at the source"
        )
    return None


def _aws_login_error(e: Exception, who: str) -> RunasError | None:
    """A profile of ``aws login`` (``login_session``): signed out, or botocore without the
    awscrt it needs to read the login at all."""
    name = who.strip("'\"")
    if isinstance(e, bx.LoginRefreshRequired | bx.LoginTokenLoadError):
        return CredentialsError(
            f"the aws login session of profile {who} has expired or is not signed in: "
            f"run aws login --profile {name}"
        )
    if isinstance(e, bx.MissingDependencyException) and "login" in str(e):
        return CredentialsError(
            f"profile {who} signs in with aws login (login_session), which botocore reads "
            "only with awscrt: add botocore[crt] where runas-async is installed (uv tool "
            "install runas-async --with 'botocore[crt]', or pip install 'botocore[crt]')"
        )
    return None


def no_credentials(who: str) -> str:
    """What to say when no credentials are found for a profile (``who``, quoted)."""
    return (
        f"no AWS credentials found for profile {who}: set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, configure keys, a role, SSO or credential_process for the "
        "profile (aws configure --profile NAME), or run where a role is provided (web "
        "identity, container or instance credentials)"
    )


def _network_hint(e: Exception) -> str:
    if isinstance(e, bx.ProxyConnectionError):
        return ": check HTTPS_PROXY and NO_PROXY"
    if isinstance(e, bx.ConnectionError):
        return ": check the network, HTTPS_PROXY and AWS_ENDPOINT_URL"
    return ""


_TRANSLATIONS: dict[Doing, Callable[[Exception, str, str], RunasError | None]] = {
    Doing.READING_CONFIG: _reading_config,
    Doing.RESOLVING: _resolving,
    Doing.FETCHING_CREDENTIALS: _fetching_credentials,
    Doing.CALLING: _calling,
}


def error_code(e: bx.ClientError) -> str:
    """The service's error code (``AccessDenied``), or ""."""
    return str(e.response.get("Error", {}).get("Code", ""))


def describe(e: BaseException) -> str:
    """A botocore error on one line: code and message, or the text and its cause."""
    if isinstance(e, bx.ClientError):
        err = e.response.get("Error", {})
        code = err.get("Code", "Error")
        message = err.get("Message", "")
        return clean(f"{code}: {message}" if message else str(code), width=MAX_AWS_MESSAGE)
    return clean(_text_and_cause(e), width=MAX_AWS_MESSAGE)


MAX_AWS_MESSAGE = 400
"""An AWS message (an AccessDenied names a role ARN and an action) is shortened past this."""


def _text_and_cause(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    text = text.splitlines()[0] if text else type(e).__name__
    # Connection errors name only the URL; the cause (reset, refused, timed out) is the reason.
    cause = getattr(e, "kwargs", {}).get("error")
    if isinstance(cause, BaseException) and str(cause).strip():
        detail = str(cause).strip().splitlines()[0]
        if detail not in text:
            text = f"{text} ({detail})"
    return text


def _last_line(text: str) -> str:
    """The last non-empty line of a program's message (its reason, usually)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return clean(lines[-1] if lines else text, width=MAX_AWS_MESSAGE)
