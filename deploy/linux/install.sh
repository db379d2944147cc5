#!/usr/bin/env bash
# Install asnmon as a systemd service for one instrument (run as root).
#
#   sudo deploy/linux/install.sh INSTRUMENT WATCH_FOLDER [SOURCE]
#
#   INSTRUMENT    short name, e.g. qqq1 (unit asnmon@qqq1, settings /etc/asnmon/qqq1.toml)
#   WATCH_FOLDER  folder the instrument writes into (a mounted share: see deploy/README.md)
#   SOURCE        what pip installs: this checkout (default), a wheel file, or "asnmon==X.Y"
#
# Creates the system user "asnmon", a venv in /opt/asnmon/venv, the settings file
# (with `asnmon init`, never overwriting an existing one), runs the preflight
# (`asnmon check`) and enables the unit. Safe to run again to upgrade.
set -euo pipefail

PREFIX="${ASNMON_PREFIX:-/opt/asnmon}"
CONF_DIR="${ASNMON_CONF_DIR:-/etc/asnmon}"
STATE_DIR="${ASNMON_STATE_DIR:-/var/lib/asnmon}"
PYTHON="${PYTHON:-python3}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ $# -lt 2 ]]; then
    sed -n '2,9p' "$0" >&2
    exit 2
fi
INSTRUMENT="$1"
WATCH="$2"
SOURCE="${3:-$(cd "$HERE/../.." && pwd)}"

if [[ ! "$INSTRUMENT" =~ ^[A-Za-z0-9_-]+$ ]]; then
    echo "instrument name '$INSTRUMENT': use letters, digits, - and _ only" >&2
    exit 2
fi
if [[ "$(id -u)" -ne 0 ]]; then
    echo "run as root (sudo): it creates a user, a service and folders" >&2
    exit 1
fi

echo "== user asnmon"
if ! id asnmon >/dev/null 2>&1; then
    useradd --system --home-dir "$STATE_DIR" --shell /usr/sbin/nologin asnmon
fi

echo "== venv $PREFIX/venv"
mkdir -p "$PREFIX"
"$PYTHON" -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/python" -m pip install --upgrade pip
"$PREFIX/venv/bin/python" -m pip install --upgrade "$SOURCE"
ASNMON="$PREFIX/venv/bin/asnmon"

echo "== settings $CONF_DIR/$INSTRUMENT.toml"
mkdir -p "$CONF_DIR" "$STATE_DIR/$INSTRUMENT" /var/log/asnmon
chown asnmon:asnmon "$STATE_DIR/$INSTRUMENT" /var/log/asnmon
SETTINGS="$CONF_DIR/$INSTRUMENT.toml"
if [[ -e "$SETTINGS" ]]; then
    echo "   kept the existing $SETTINGS"
else
    "$ASNMON" init "$SETTINGS" --watch "$WATCH" --db "$STATE_DIR/$INSTRUMENT/asnmon.duckdb"
fi
if [[ ! -e "$CONF_DIR/$INSTRUMENT.env" ]]; then
    install -m 600 -o root -g root /dev/null "$CONF_DIR/$INSTRUMENT.env"
    echo "# ASNMON_DASHBOARD_PASSWORD=..." >>"$CONF_DIR/$INSTRUMENT.env"
fi

echo "== unit"
install -m 644 "$HERE/asnmon@.service" /etc/systemd/system/asnmon@.service
systemctl daemon-reload

echo "== preflight (as the service user)"
if ! runuser -u asnmon -- "$ASNMON" check --settings "$SETTINGS"; then
    echo "fix the problems above, then: systemctl enable --now asnmon@$INSTRUMENT" >&2
    exit 1
fi
systemctl enable --now "asnmon@$INSTRUMENT"
systemctl --no-pager status "asnmon@$INSTRUMENT" || true
echo "logs: journalctl -u asnmon@$INSTRUMENT -f"
