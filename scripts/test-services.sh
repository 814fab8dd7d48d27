#!/usr/bin/env bash
# Installs the server programs and the browser the test suite starts itself (none run as
# services):
#   - Dovecot (IMAP), started by tests/servers/imap_server.py from a generated config;
#   - dnsmasq (DNS, from dnsmasq-base: the binary without the system service), started by
#     tests/servers/dns_server.py with the zones of the `doctor` tests;
#   - Chromium and its WebDriver, started headless by tests/test_report_browser.py.
# aiosmtpd (SMTP) and selenium are Python dev dependencies (`pip install -e '.[dev]'`).
# Idempotent and quick when everything is there. Never starts a system service.
# With CI=true a program that cannot be installed is an error; elsewhere its tests are skipped.
set -euo pipefail

have_dovecot() { command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ]; }
have_dnsmasq() { command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ]; }
have_chromium() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }

# package (what the tests need it for) and how to tell it is there
PACKAGES=()
have_dovecot || PACKAGES+=(dovecot-imapd)
have_dnsmasq || PACKAGES+=(dnsmasq-base)
have_chromium || PACKAGES+=(chromium chromium-driver)

if [ "${#PACKAGES[@]}" -eq 0 ]; then
    exit 0
fi

missing() {
    echo "test-services: missing ${PACKAGES[*]}; $1 — until then the IMAP, DNS and browser" \
         "tests that need them are skipped" >&2
    [ "${CI:-}" = "true" ] && exit 1
    exit 0
}

if ! command -v apt-get >/dev/null 2>&1; then
    missing "apt-get is not available, install them by hand"
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    else
        missing "run as root (or with sudo): apt-get install ${PACKAGES[*]}"
    fi
fi

echo "test-services: installing ${PACKAGES[*]} (not started as services)" >&2

# Keep the packages' maintainer scripts from starting system services: invoke-rc.d and
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
    "${PACKAGES[@]}" >/dev/null

failed=0
have_dovecot || { echo "test-services: dovecot-imapd installed but no dovecot binary" >&2; failed=1; }
have_dnsmasq || { echo "test-services: dnsmasq-base installed but no dnsmasq binary" >&2; failed=1; }
have_chromium || { echo "test-services: chromium installed but no chromium/chromedriver" >&2; failed=1; }
[ "$failed" = 0 ] || exit 1
echo "test-services: dovecot, dnsmasq and chromium ready" >&2
