"""The exception tree of runas-async.

::

    RunasError                  base of everything we raise on purpose
    ├── UsageError              bad command line or endpoint argument     (exit 2)
    ├── ConfigError             local configuration cannot be used        (exit 2)
    │   ├── ClientNotFound      the login client is not on PATH
    │   ├── DockerConfigError   the client's config.json cannot be read or written
    │   └── CommandNotFound     the command of ``exec`` or ``-- CMD`` cannot be run (127, 126)
    ├── AwsError                AWS-side problem                (exit 2 unless one registry)
    │   ├── ProfileNotFound     the profile is not in the AWS config files
    │   ├── NoRegion            no region for a profile that needs one
    │   ├── CredentialsError    no, unusable or expired credentials for a profile
    │   │   └── MfaCodeRequired an MFA code is needed and nothing can give one
    │   └── TokenError          GetAuthorizationToken failed (per token request)
    └── LoginError              the login client failed (per registry)

Every message reads well alone on one line and names the input that caused it, and says
what to do where there is something to do. Secrets never appear in a message.

Where a failure stops (the boundary the engine and ``cli.exit_status`` keep):

* **Known before any request: exit 2, nothing tried.** UsageError and ConfigError
  (arguments, a config file that does not parse, a broken ``source_profile`` chain, an
  unusable auth file, a missing client or credential helper), ProfileNotFound, NoRegion.
* **Known only at run time: the registries that needed it fail, every other registry is
  still tried, exit 1.** CredentialsError (a denied role, an expired SSO session, a refused
  or missing MFA code, a failing ``credential_process``, no credentials found anywhere,
  rejected keys), TokenError (throttling past the retries, a refused token request) and
  LoginError (one registry refused the login). Each becomes that registry's result, never
  an exception that cancels the others.
* **A surprise in one registry's runner** (an exception none of ours: a library's, a bug):
  that registry fails with one sanitized line naming the exception, every other registry
  is still tried, exit 1 (engine.py); its traceback only under ``--debug``.

Each library's exceptions become these at one boundary, and nowhere else::

    botocore, aiobotocore ──> aws/boundary.py    map_aws_errors(profile, doing)
      every AWS call and credential resolution:    ProfileNotFound, ConfigError,
                                                   CredentialsError, TokenError
    aiohttp ───────────────> auth/registry.py    map_http_errors(host)
      the built-in client's registry check:        LoginError (per registry); no
                                                   connection: the next URL, then
                                                   LoginError "cannot reach HOST"
"""

from __future__ import annotations


class RunasError(Exception):
    """Base class of every error runas-async raises on purpose."""


class UsageError(RunasError):
    """The command line cannot be understood."""


class ConfigError(RunasError):
    """Local configuration (files, programs) cannot be used."""


class ClientNotFound(ConfigError):
    """The login client executable is not installed."""


class DockerConfigError(ConfigError):
    """The login client's auth file cannot be read, parsed or written."""


class CommandNotFound(ConfigError):
    """The command to run (``exec``, ``ecr login -- CMD``) is not on PATH or not executable.

    ``status`` is the exit status, as a shell's: 127 not found, 126 found but not runnable.
    """

    def __init__(self, message: str, *, status: int = 127) -> None:
        super().__init__(message)
        self.status = status


class AwsError(RunasError):
    """Something on the AWS side: profiles, credentials, API calls."""


class ProfileNotFound(AwsError):
    """The named profile does not exist."""


class NoRegion(AwsError):
    """A region is needed and none is configured."""


class CredentialsError(AwsError):
    """Credentials are missing, cannot be resolved, or were rejected."""


class MfaCodeRequired(CredentialsError):
    """A profile needs an MFA code: no terminal to ask on, and no --mfa-code or MFA_CODE."""


class TokenError(AwsError):
    """An authorization token could not be fetched."""


class LoginError(RunasError):
    """The login client did not log in."""
