#!/bin/sh
# Installs a built Outpost: the binary, the systemd unit, the documentation
# the unit's Documentation= lines point at, and a root-only directory for
# the credentials. Run from the repository after `cargo build --release`,
# as root. DESTDIR installs into a staging root (packaging, tests).
set -eu
cd "$(dirname "$0")/.."
DESTDIR=${DESTDIR:-}
BIN=${OUTPOST_BIN:-target/release/outpost}
doc="$DESTDIR/usr/local/share/doc/outpost"

[ -x "$BIN" ] || { echo "install.sh: $BIN not found: run cargo build --release first" >&2; exit 1; }
install -D -m 0755 "$BIN" "$DESTDIR/usr/local/bin/outpost"
install -D -m 0644 packaging/outpost.service "$DESTDIR/etc/systemd/system/outpost.service"
install -D -m 0644 README.md "$doc/README.md"
install -D -m 0644 docs/primaries.md "$doc/primaries.md"
install -D -m 0644 docs/config.md "$doc/config.md"
install -D -m 0644 config/example-full.toml "$doc/example-full.toml"
install -d -m 0755 "$DESTDIR/etc/outpost"
install -d -m 0700 "$DESTDIR/etc/outpost/credentials"
echo "installed; now write /etc/outpost/outpost.toml (see $doc/primaries.md), then:"
echo "  systemctl daemon-reload && systemctl enable --now outpost"
