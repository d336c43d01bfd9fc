#!/bin/sh
# Install Tandem from a built binary (POSIX sh, run as root).
#
#   install.sh --binary dist/tandem --domain cluster1.tandem.example.com [--prefix /] [--no-start]
#
# Creates the system user and group `tandem` (home /var/lib/tandem, no login shell),
# /etc/tandem (0750 root:tandem) with tandem.toml made from the documented example
# with the domain filled in (an existing config is never overwritten), /var/lib/tandem
# (0700 tandem) with a new master key, /usr/bin/tandem and the systemd unit; then runs
# `tandem check-config` and `tandem doctor`, and enables and starts the service.
# Running it again upgrades the binary and the unit and restarts a running service.
#
# --prefix DIR  install under DIR (for packagers and tests): no user, no ownership
#               changes, no doctor and no systemctl (they concern the live system).
# --no-start    install and enable nothing: start it yourself after reviewing the config.
#
# Exit status: 0 installed (and started unless told not to); 1 installed but doctor
# found problems, so the service was not started; 2 bad usage; 3 failed.

set -eu

usage() {
    echo "usage: install.sh --binary PATH --domain DOMAIN [--prefix DIR] [--no-start]" >&2
    exit 2
}

die() {
    echo "install.sh: $*" >&2
    exit 3
}

note() {
    echo "install.sh: $*"
}

BINARY=""
DOMAIN=""
PREFIX="/"
START=yes
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) [ $# -ge 2 ] || usage; BINARY=$2; shift 2 ;;
        --domain) [ $# -ge 2 ] || usage; DOMAIN=$2; shift 2 ;;
        --prefix) [ $# -ge 2 ] || usage; PREFIX=$2; shift 2 ;;
        --no-start) START=no; shift ;;
        -h|--help) usage ;;
        *) echo "install.sh: unknown argument: $1" >&2; usage ;;
    esac
done

HERE=$(cd "$(dirname "$0")" && pwd)
EXAMPLE="$HERE/tandem.toml"
UNIT=""
for candidate in "$HERE/tandem.service" "$HERE/../systemd/tandem.service"; do
    if [ -f "$candidate" ]; then UNIT=$candidate; break; fi
done

[ -n "$BINARY" ] || usage
[ -f "$BINARY" ] && [ -x "$BINARY" ] || die "--binary $BINARY: not an executable file"
[ -f "$EXAMPLE" ] || die "$EXAMPLE: the example config is missing next to install.sh"
[ -n "$UNIT" ] || die "tandem.service not found next to install.sh or in ../systemd/"

# Everything below is relative to ROOT ("" for the live system).
ROOT=${PREFIX%/}
LIVE=no
if [ -z "$ROOT" ]; then
    LIVE=yes
    [ "$(id -u)" -eq 0 ] || die "run as root (or use --prefix DIR to install into a directory)"
else
    mkdir -p "$ROOT" || die "cannot create $ROOT"
    ROOT=$(cd "$ROOT" && pwd)
fi

USER_NAME=tandem
DATA_DIR=/var/lib/tandem
CONFIG=/etc/tandem/tandem.toml
KEY_FILE=$DATA_DIR/master.key

if [ ! -e "$ROOT$CONFIG" ]; then
    [ -n "$DOMAIN" ] || die "--domain is needed for a new installation (the cluster's DNS domain)"
    # Checked here because it goes into a sed expression; check-config validates it fully.
    case "$DOMAIN" in
        *[!A-Za-z0-9.-]*|.*|-*) die "--domain $DOMAIN: not a DNS name such as cluster1.tandem.example.com" ;;
    esac
fi

# -- user, group ---------------------------------------------------------------------
if [ "$LIVE" = yes ]; then
    if ! getent group "$USER_NAME" >/dev/null; then
        groupadd --system "$USER_NAME" || die "groupadd $USER_NAME failed"
        note "created group $USER_NAME"
    fi
    if ! getent passwd "$USER_NAME" >/dev/null; then
        useradd --system --gid "$USER_NAME" --home-dir "$DATA_DIR" --no-create-home \
            --shell /usr/sbin/nologin --comment "Tandem appliance" "$USER_NAME" || die "useradd $USER_NAME failed"
        note "created system user $USER_NAME"
    fi
else
    note "--prefix $PREFIX: not creating the user $USER_NAME and not changing owners (do it in the package's scripts)"
fi

# owner USER:GROUP PATH -- only on the live system
owner() {
    if [ "$LIVE" = yes ]; then chown "$1" "$2" || die "chown $1 $2 failed"; fi
}

# -- directories -----------------------------------------------------------------------
# mkdir, not install -d: existing system directories keep their modes.
mkdir -p "$ROOT/etc" "$ROOT/usr/bin" "$ROOT/lib/systemd/system" "$ROOT/var/lib" \
    || die "cannot create directories under ${ROOT:-/}"
install -d -m 0750 "$ROOT/etc/tandem" || die "cannot create $ROOT/etc/tandem"
chmod 0750 "$ROOT/etc/tandem"
owner "root:$USER_NAME" "$ROOT/etc/tandem"
install -d -m 0700 "$ROOT$DATA_DIR" || die "cannot create $ROOT$DATA_DIR"
chmod 0700 "$ROOT$DATA_DIR"
owner "$USER_NAME:$USER_NAME" "$ROOT$DATA_DIR"

# -- config: never overwrite the administrator's --------------------------------------
NEW_CONFIG=no
if [ -e "$ROOT$CONFIG" ]; then
    note "kept the existing $ROOT$CONFIG${DOMAIN:+ (--domain $DOMAIN not applied)}"
else
    tmp="$ROOT$CONFIG.new.$$"
    sed "s/^domain = \".*\"/domain = \"$DOMAIN\"/" "$EXAMPLE" > "$tmp" || die "cannot write $tmp"
    grep -q "^domain = \"$DOMAIN\"\$" "$tmp" || { rm -f "$tmp"; die "$EXAMPLE has no 'domain = ...' line"; }
    chmod 0640 "$tmp"
    owner "root:$USER_NAME" "$tmp"
    mv "$tmp" "$ROOT$CONFIG"
    NEW_CONFIG=yes
    note "wrote $ROOT$CONFIG (cluster domain $DOMAIN); review it, then restart tandem after changes"
fi

# -- master key: only with a new config (an existing one may name another key file) -----
if [ "$NEW_CONFIG" = yes ] && [ ! -e "$ROOT$KEY_FILE" ]; then
    tmp="$ROOT$KEY_FILE.new.$$"
    (umask 077 && { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; echo; } > "$tmp") || die "cannot write $tmp"
    [ "$(tr -d '\n' < "$tmp" | wc -c)" -eq 64 ] || { rm -f "$tmp"; die "could not read 32 random bytes"; }
    chmod 0600 "$tmp"
    owner "$USER_NAME:$USER_NAME" "$tmp"
    mv "$tmp" "$ROOT$KEY_FILE"
    note "created the master key $ROOT$KEY_FILE: back it up (tenant secrets cannot be recovered without it)"
fi

# -- binary and unit (renamed into place: a running binary is never written over) ------
install -m 0755 "$BINARY" "$ROOT/usr/bin/.tandem.new.$$" || die "cannot copy $BINARY"
mv -f "$ROOT/usr/bin/.tandem.new.$$" "$ROOT/usr/bin/tandem"
install -m 0644 "$UNIT" "$ROOT/lib/systemd/system/tandem.service" || die "cannot install the systemd unit"
note "installed $ROOT/usr/bin/tandem and $ROOT/lib/systemd/system/tandem.service"

# -- checks ------------------------------------------------------------------------------
"$ROOT/usr/bin/tandem" --config "$ROOT$CONFIG" check-config >/dev/null \
    || die "$ROOT$CONFIG does not validate (see above); fix it and run install.sh again"
note "$ROOT$CONFIG is valid"

if [ "$LIVE" = no ]; then
    note "--prefix $PREFIX: skipped tandem doctor and systemctl (they check the live system)"
    exit 0
fi

HEALTHY=yes
"/usr/bin/tandem" --config "$CONFIG" doctor || HEALTHY=no

# -- service -------------------------------------------------------------------------------
if ! command -v systemctl >/dev/null 2>&1 || [ ! -d /run/systemd/system ]; then
    note "systemd is not running here: start the appliance with: /usr/bin/tandem --config $CONFIG run"
    [ "$HEALTHY" = yes ] || exit 1
    exit 0
fi
systemctl daemon-reload
if [ "$START" = no ]; then
    note "--no-start: when ready: systemctl enable --now tandem"
    exit 0
fi
if [ "$HEALTHY" = no ]; then
    note "not starting: tandem doctor found problems (FAIL lines above); fix them, then: systemctl enable --now tandem"
    exit 1
fi
if systemctl is-active --quiet tandem; then
    systemctl enable tandem
    systemctl restart tandem
    note "restarted tandem with the new binary"
else
    systemctl enable --now tandem
    note "started tandem: systemctl status tandem; journalctl -u tandem"
fi
