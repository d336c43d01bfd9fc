"""The `tandem` command (also `python -m appliance`).

Each sub-command loads and validates the config first: a bad file stops every
command the same way (exit 2, one line). Errors from our exception tree print
their message and exit with their code; anything else is a bug (exit 70, with
the traceback in the log, never to a user-facing stream without --debug).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import sys
from pathlib import Path

from appliance import __version__, exitcodes, logs
from appliance.config import Config, default_path, load_config, redacted
from appliance.errors import ConfigurationError, FatalError, TandemError

log = logging.getLogger("tandem")


def _parser() -> argparse.ArgumentParser:
    # --config and --debug are accepted before or after the sub-command
    # (`tandem --config X doctor` and `tandem doctor --config X`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", type=Path, default=argparse.SUPPRESS,
                        help=f"config file (default: $TANDEM_CONFIG or {default_path()})")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="log at debug level, show tracebacks")
    parser = argparse.ArgumentParser(prog="tandem", description="Tandem: two-way sync of work items, on premise.",
                                     parents=[common])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_subparser_class(common))
    sub.required = True

    sub.add_parser("run", help="run the appliance in the foreground (supervisor, web and tenant workers)")
    migrate = sub.add_parser("migrate", help="apply pending schema migrations (control, then every tenant)")
    migrate.add_argument("--dry-run", action="store_true", help="list what would be applied, change nothing")
    sub.add_parser("check-config", help="validate the config and print it resolved (secrets redacted)")
    doctor = sub.add_parser("doctor", help="check the installation and say how to fix what is wrong")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_parser("version", help="print the version")

    tenant = sub.add_parser("tenant", help="manage tenants").add_subparsers(dest="action", metavar="ACTION")
    tenant.required = True
    create = tenant.add_parser("create", help="create a tenant: schema, role, migrations (and its first admin)")
    create.add_argument("slug")
    create.add_argument("--name", default="", help="display name")
    create.add_argument("--admin-email", metavar="EMAIL", help="create the tenant's first admin user")
    create.add_argument("--password-stdin", action="store_true",
                        help="read the first admin's password from standard input (otherwise one is generated "
                             "and printed once)")
    listing = tenant.add_parser("list", help="list tenants with their worker state")
    listing.add_argument("--json", action="store_true")
    for action in ("disable", "enable"):
        tenant.add_parser(action, help=f"{action} a tenant (its worker and its traffic)").add_argument("slug")
    delete = tenant.add_parser("delete", help="delete a tenant with all its data (schema and role)")
    delete.add_argument("slug")
    delete.add_argument("--yes", action="store_true", help="really delete; required")

    admin = sub.add_parser("admin", help="manage cluster admins").add_subparsers(dest="action", metavar="ACTION")
    admin.required = True
    admin_create = admin.add_parser("create", help="create a cluster admin")
    admin_create.add_argument("email")
    admin_create.add_argument("--password-stdin", action="store_true",
                              help="read the password from standard input (otherwise one is generated and "
                                   "printed once)")
    admin.add_parser("list", help="list cluster admins")
    for action, what in _ACCOUNT_ACTIONS.items():
        account = admin.add_parser(action, help=what.format(who="a cluster admin"))
        account.add_argument("email")
        if action == "reset-password":
            _password_stdin(account)

    user = sub.add_parser("user", help="manage a tenant's users").add_subparsers(dest="action", metavar="ACTION")
    user.required = True
    user_create = user.add_parser("create", help="create a user of a tenant")
    _tenant_option(user_create)
    user_create.add_argument("--email", required=True)
    user_create.add_argument("--role", required=True, choices=("admin", "editor", "viewer"))
    user_create.add_argument("--name", default="", help="display name")
    _password_stdin(user_create)
    user_list = user.add_parser("list", help="list a tenant's users")
    _tenant_option(user_list)
    user_list.add_argument("--json", action="store_true")
    for action, what in _ACCOUNT_ACTIONS.items():
        account = user.add_parser(action, help=what.format(who="a user of a tenant"))
        _tenant_option(account)
        account.add_argument("--email", required=True)
        if action == "reset-password":
            _password_stdin(account)
    return parser


_ACCOUNT_ACTIONS = {
    "disable": "disable {who}: its sessions end, its API tokens stop working",
    "enable": "enable {who} again",
    "unlock": "lift the sign-in lock-out of {who}",
    "reset-password": "set a new password for {who} (ends its sessions, lifts a lock-out)",
}


def _tenant_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", required=True, metavar="SLUG", help="the tenant")


def _password_stdin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--password-stdin", action="store_true",
                        help="read the password from standard input (otherwise one is generated and printed once)")


def _subparser_class(common: argparse.ArgumentParser):
    class SubParser(argparse.ArgumentParser):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("parents", [])
            kwargs["parents"] = [*kwargs["parents"], common]
            super().__init__(*args, **kwargs)
    return SubParser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.config = getattr(args, "config", None)
    args.debug = getattr(args, "debug", False)
    if args.command == "version":
        print(f"tandem {__version__}")
        return exitcodes.OK
    logs.setup("debug" if args.debug else "warning")
    try:
        config = load_config(args.config)
    except ConfigurationError as exc:
        print(f"tandem: config error: {exc}", file=sys.stderr)
        return exc.exit_code
    logs.setup("debug" if args.debug else config.log.level, config.log.format)
    try:
        return _dispatch(args, config)
    except TandemError as exc:
        print(f"tandem: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception:
        log.exception("internal error in `tandem %s`", args.command)
        print("tandem: internal error (see the log above); please report it", file=sys.stderr)
        return exitcodes.SOFTWARE


def _dispatch(args: argparse.Namespace, config: Config) -> int:
    if args.command == "check-config":
        print(f"# {config.source}: ok")
        print(json.dumps(redacted(config), indent=2))
        return exitcodes.OK
    if args.command == "doctor":
        from appliance import doctor
        return doctor.main(config, as_json=args.json)
    if args.command == "run":
        from appliance.supervisor import Supervisor
        return Supervisor(config, config_path=args.config).run()

    key = _prepare_for_database(config)
    from appliance import db
    with db.database_available(config, key):
        if args.command == "migrate":
            return asyncio.run(_migrate(config, key, args.dry_run))
        if args.command == "tenant":
            return asyncio.run(_tenant(config, key, args))
        if args.command == "admin":
            return asyncio.run(_admin(config, key, args))
        if args.command == "user":
            return asyncio.run(_user(config, key, args))
    raise AssertionError(f"unhandled command {args.command}")


def _prepare_for_database(config: Config):
    """CLI commands that touch the database: as root, switch to the service user first
    (files they create must belong to it), then load or create the master key."""
    from appliance import keys, privileges
    owner = privileges.owner_ids(config.security.run_as)
    privileges.prepare_dir(config.paths.data_dir, owner)
    privileges.drop_to(config.security.run_as)
    return keys.ensure_key(config.security.key_file)


async def _migrate(config: Config, key, dry_run: bool) -> int:
    from appliance import migrator
    report = await migrator.migrate(config, key, dry_run=dry_run)
    for line in report.lines():
        print(line)
    return exitcodes.OK


async def _tenant(config: Config, key, args: argparse.Namespace) -> int:
    from appliance import db, tenants
    async with db.control(config, key, application_name="tandem cli") as conn:
        await _require_migrated(conn)
        if args.action == "create":
            password = generated = None
            if args.admin_email is not None:
                password, generated = _new_password(config, args.password_stdin)
            elif args.password_stdin:
                raise ConfigurationError("--password-stdin is the first admin's password: give --admin-email too")
            tenant = await tenants.create_tenant(config, key, conn, args.slug, display_name=args.name,
                                                 admin_email=args.admin_email, admin_password=password)
            print(f"created tenant {tenant.slug}: https://{tenant.slug}.{config.cluster.domain}/ "
                  f"(schema {tenant.schema_name}, role {tenant.role_name})")
            if args.admin_email is not None:
                print(f"created admin {args.admin_email.strip()} of tenant {tenant.slug}")
                _print_generated(generated)
        elif args.action == "list":
            rows = await tenants.list_tenants(conn)
            if args.json:
                print(json.dumps([row.as_dict() for row in rows], indent=2, default=str))
            else:
                _print_table(["SLUG", "STATE", "WORKER", "NODE", "PID", "RESTARTS", "REASON"],
                             [[r.slug, r.state, r.worker_state or "-", r.node or "-", r.pid or "-",
                               r.restarts, r.reason or ""] for r in rows])
        elif args.action in ("disable", "enable"):
            await tenants.set_state(conn, args.slug, "disabled" if args.action == "disable" else "active",
                                    actor="cli")
            print(f"tenant {args.slug} {args.action}d")
        elif args.action == "delete":
            if not args.yes:
                raise ConfigurationError(f"deleting tenant {args.slug} removes all its data; "
                                         "repeat with --yes to confirm")
            await tenants.delete_tenant(config, key, conn, args.slug, actor="cli")
            print(f"tenant {args.slug} deleted")
    return exitcodes.OK


async def _admin(config: Config, key, args: argparse.Namespace) -> int:
    from appliance import db, scope
    password = generated = None
    if args.action in ("create", "reset-password"):
        password, generated = _new_password(config, args.password_stdin)
    async with db.control(config, key, application_name="tandem cli") as conn:
        await _require_migrated(conn)
        async with scope.console_transaction(conn):
            await _account_command(config, conn, args, args.email if args.action != "list" else "",
                                   "admin", password, where="cluster admin")
    if args.action in ("create", "reset-password"):
        _print_generated(generated)
    return exitcodes.OK


async def _user(config: Config, key, args: argparse.Namespace) -> int:
    from appliance import db, scope, tenants
    password = generated = None
    if args.action in ("create", "reset-password"):
        password, generated = _new_password(config, args.password_stdin)
    async with db.control(config, key, application_name="tandem cli") as conn:
        await _require_migrated(conn)
        tenant = await tenants.get_tenant(conn, args.tenant)
        if tenant.state == "deleting":
            raise FatalError(f"tenant {tenant.slug} is being deleted")
        # As the tenant's role, in its schema: the database confines the command to this tenant.
        async with scope.tenant_transaction(conn, tenant.schema_name, tenant.role_name):
            await _account_command(config, conn, args, getattr(args, "email", ""), getattr(args, "role", ""),
                                   password, where=f"user of tenant {tenant.slug}")
    if args.action in ("create", "reset-password"):
        _print_generated(generated)
    return exitcodes.OK


async def _account_command(config: Config, conn, args: argparse.Namespace, email: str, role: str,
                           password: str | None, where: str) -> None:
    """One `admin`/`user` action on a connection already scoped to the realm."""
    from appliance import accounts
    min_length = config.auth.password_min_length
    if args.action == "create":
        user = await accounts.create_user(conn, email, password, role, actor="cli", min_length=min_length,
                                          display_name=getattr(args, "name", ""))
        print(f"created {where} {user.email}" + ("" if where == "cluster admin" else f" ({user.role})"))
        return
    if args.action == "list":
        users = await accounts.list_users(conn)
        if getattr(args, "json", False):
            print(json.dumps([_user_dict(u) for u in users], indent=2, default=str))
            return
        _print_table(["EMAIL", "ROLE", "STATE", "LAST LOGIN", "CREATED", "NAME"],
                     [[u.email, u.role, _state(u), _when(u.last_login_at), _when(u.created_at), u.display_name]
                      for u in users])
        return
    user = await accounts.find_user(conn, email)
    if args.action in ("disable", "enable"):
        await accounts.update_user(conn, user.id, actor="cli", disabled=args.action == "disable")
        print(f"{where} {user.email} {args.action}d")
    elif args.action == "unlock":
        await accounts.unlock_user(conn, user.id, actor="cli")
        print(f"{where} {user.email} unlocked" + ("" if user.locked else " (it was not locked)"))
    elif args.action == "reset-password":
        await accounts.reset_password(conn, user.id, password, actor="cli", min_length=min_length)
        print(f"password of {where} {user.email} reset; its sessions ended")


def _new_password(config: Config, from_stdin: bool) -> tuple[str, str | None]:
    """(password to set, the same if generated else None), before any database work."""
    from appliance import accounts
    if from_stdin:
        return _read_password(), None
    password = accounts.generate_password(config.auth.password_min_length)
    return password, password


def _print_generated(generated: str | None) -> None:
    # Printed only after the transaction committed: never a password that was not stored.
    if generated is not None:
        print(f"password (shown once): {generated}")


def _state(user) -> str:
    if user.disabled_at is not None:
        return "disabled"
    return "locked" if user.locked else "active"


def _when(moment) -> str:
    return moment.isoformat(timespec="seconds") if moment else "-"


def _user_dict(user) -> dict:
    return {"id": user.id, "email": user.email, "role": user.role, "display_name": user.display_name,
            "state": _state(user), "disabled_at": user.disabled_at, "locked_until": user.locked_until,
            "failed_logins": user.failed_logins, "last_login_at": user.last_login_at,
            "created_at": user.created_at}


async def _require_migrated(conn) -> None:
    from appliance import migrator
    await migrator.ensure_current(conn)


def _read_password() -> str:
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise ConfigurationError("the passwords differ")
        return password
    return sys.stdin.readline().rstrip("\n")


def _print_table(header: list[str], rows: list[list]) -> None:
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    if not rows:
        print("(none)")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
