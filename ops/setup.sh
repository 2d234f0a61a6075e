#!/usr/bin/env bash
# Installs what building, testing and the demo need on a Debian machine. Idempotent: a second
# run installs nothing and takes a second. Needs root (or sudo) only when something is missing.
set -euo pipefail

APT_PACKAGES=(subversion git sqlite3 libsqlite3-dev zlib1g-dev libssl-dev openssl tar gzip findutils diffutils
              python3 python3-pip python3-subversion python3-cryptography chromium curl)
TRAC_VERSION="1.6"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Trac comes from PyPI (Debian's package is older). It is installed for the system Python,
# /usr/bin/python3, which has the Subversion bindings (python3-subversion) that Trac needs to
# resync a repository; its trac-admin lands in /usr/local/bin.
if ! /usr/bin/python3 -c "import trac, svn.core, sys; sys.exit(0 if trac.__version__.startswith('$TRAC_VERSION') else 1)" 2>/dev/null; then
    echo "setup: installing Trac $TRAC_VERSION for /usr/bin/python3 with pip"
    as_root /usr/bin/python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        --break-system-packages "Trac==$TRAC_VERSION"
fi

# promtool (checks /metrics in the tests) from Debian's prometheus package, without installing
# or starting the server: the package is downloaded and only its promtool binary extracted.
if ! command -v promtool >/dev/null 2>&1; then
    echo "setup: installing promtool from Debian's prometheus package (the server is not installed)"
    work=$(mktemp -d)
    chmod 755 "$work"  # apt downloads as _apt
    (cd "$work" && apt-get download prometheus >/dev/null)
    dpkg-deb -x "$work"/prometheus_*.deb "$work/x"
    as_root install -m 0755 "$work/x/usr/bin/promtool" /usr/local/bin/promtool
    rm -rf "$work"
fi

# aiosmtpd (a real SMTP server with STARTTLS and AUTH for the mail channel's tests) from PyPI.
if ! /usr/bin/python3 -c "import aiosmtpd" 2>/dev/null; then
    echo "setup: installing aiosmtpd for /usr/bin/python3 with pip"
    as_root /usr/bin/python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        --break-system-packages "aiosmtpd==1.4.6"
fi

if ! command -v swift >/dev/null 2>&1; then
    echo "setup: Swift 6 is required and not on PATH; install the Swift toolchain for Linux (swift.org) and retry." >&2
    exit 1
fi
