#!/usr/bin/env bash
# Installs the server programs the test suite starts itself (none run as services):
#   - Dovecot (IMAP), started by tests/servers/imap_server.py from a generated config.
# aiosmtpd (SMTP) is a Python dev dependency and comes with `pip install -e '.[dev]'`.
# Idempotent and quick when everything is there. Never starts a system service.
set -euo pipefail

have_dovecot() {
    command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ]
}

if have_dovecot; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "test-services: dovecot is missing and apt-get is not available;" \
         "install Dovecot (dovecot-imapd) by hand, or the IMAP tests are skipped" >&2
    [ "${CI:-}" = "true" ] && exit 1
    exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    else
        echo "test-services: dovecot is missing; run as root (or with sudo):" \
             "apt-get install dovecot-imapd — until then the IMAP tests are skipped" >&2
        [ "${CI:-}" = "true" ] && exit 1
        exit 0
    fi
fi

echo "test-services: installing dovecot-imapd (not started as a service)" >&2

# Keep the package's maintainer scripts from starting the system service: invoke-rc.d and
# deb-systemd-invoke both honour policy-rc.d (exit 101 = action forbidden). Only ours is removed.
POLICY=/usr/sbin/policy-rc.d
OWN_POLICY=0
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 0755 "$POLICY"
    OWN_POLICY=1
fi
cleanup() {
    if [ "$OWN_POLICY" = 1 ]; then
        "${SUDO[@]}" rm -f "$POLICY"
    fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    dovecot-imapd >/dev/null

if ! have_dovecot; then
    echo "test-services: dovecot-imapd installed but no dovecot binary found" >&2
    exit 1
fi
echo "test-services: $(dovecot --version 2>/dev/null || /usr/sbin/dovecot --version) ready" >&2
