"""Every exit status Tandem's processes use, named once.

The supervisor decides what to do with a dead child from these numbers, and
administrators' scripts read the CLI's; keep them stable.
"""

OK = 0
FAILURE = 1                 # an operation failed (the message says why)
CONFIG = 2                  # bad config file, bad flag or bad argument
BOOT_FAILURE = 3            # a worker could not start (database, schema, role...)
LOCK_LOST = 4               # a tenant worker lost its advisory-lock connection
HEARTBEAT_STALE = 5         # reserved: a worker noticed it cannot report in time
DATABASE_UNAVAILABLE = 69   # EX_UNAVAILABLE: the database could not be reached
MIGRATIONS_PENDING = 75     # EX_TEMPFAIL: run `tandem migrate` first
SOFTWARE = 70               # EX_SOFTWARE: an unexpected internal error
PERMISSION = 77             # EX_NOPERM: file modes, ownership, service user

NAMES = {
    OK: "ok",
    FAILURE: "failure",
    CONFIG: "configuration error",
    BOOT_FAILURE: "boot failure",
    LOCK_LOST: "advisory lock lost",
    HEARTBEAT_STALE: "heartbeat stale",
    DATABASE_UNAVAILABLE: "database unavailable",
    MIGRATIONS_PENDING: "migrations pending",
    SOFTWARE: "internal error",
    PERMISSION: "permission problem",
}


def describe(code: int) -> str:
    """Human words for an exit status, for logs and `tandem tenant list`."""
    return NAMES.get(code, f"exit status {code}")
