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
import os
import secrets
import sys
from pathlib import Path

from appliance import __version__, exitcodes, logs
from appliance.config import Config, default_path, load_config, redacted
from appliance.errors import ConfigurationError, TandemError

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
    create = tenant.add_parser("create", help="create a tenant: schema, role, migrations")
    create.add_argument("slug")
    create.add_argument("--name", default="", help="display name")
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
    return parser


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
            tenant = await tenants.create_tenant(config, key, conn, args.slug, display_name=args.name)
            print(f"created tenant {tenant.slug}: https://{tenant.slug}.{config.cluster.domain}/ "
                  f"(schema {tenant.schema_name}, role {tenant.role_name})")
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
    from appliance import accounts, db
    async with db.control(config, key, application_name="tandem cli") as conn:
        await _require_migrated(conn)
        if args.action == "create":
            generated = not args.password_stdin
            password = secrets.token_urlsafe(15) if generated else _read_password()
            await accounts.create_cluster_admin(conn, args.email, password, actor="cli")
            print(f"created cluster admin {args.email}")
            if generated:
                print(f"password (shown once): {password}")
        elif args.action == "list":
            rows = await accounts.list_cluster_admins(conn)
            _print_table(["EMAIL", "CREATED", "DISABLED"],
                         [[r["email"], r["created_at"].isoformat(timespec="seconds"),
                           r["disabled_at"].isoformat(timespec="seconds") if r["disabled_at"] else "-"]
                          for r in rows])
    return exitcodes.OK


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
