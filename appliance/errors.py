"""One exception tree, grouped by what the caller should do about it.

- ConfigurationError: a person must change a file, a setting or the machine;
  retrying changes nothing. The message names what to change.
- RetriableError: try again later (with backoff); the world may heal.
- FatalError: this operation cannot succeed as asked.
"""

from appliance import exitcodes


class TandemError(Exception):
    """Base of every error Tandem raises on purpose. `exit_code` is what the CLI exits with."""

    exit_code = exitcodes.FAILURE


class ConfigurationError(TandemError):
    exit_code = exitcodes.CONFIG


class PermissionProblem(ConfigurationError):
    """A file or directory has the wrong owner or mode; the message names the fix."""

    exit_code = exitcodes.PERMISSION


class RetriableError(TandemError):
    pass


class DatabaseUnavailable(RetriableError):
    exit_code = exitcodes.DATABASE_UNAVAILABLE


class FatalError(TandemError):
    pass


class MigrationError(FatalError):
    """Migration history and the binary disagree, or a migration failed."""


class MigrationsPending(TandemError):
    exit_code = exitcodes.MIGRATIONS_PENDING


class InvalidIdentifier(FatalError):
    exit_code = exitcodes.CONFIG


class NotFound(FatalError):
    pass


class AlreadyExists(FatalError):
    pass
