#!/usr/bin/env bash
# Create the virtualenv and install the project with its test tools.
# System libraries come from apt when missing: python3-venv (Debian splits it out), libzbar0
# (the zbar QR decoder behind pyzbar), libusb-1.0-0 (behind pyusb, for usb:// receipt printers) and
# chromium (the pages' browser tests drive it with Playwright; Playwright's own browser download
# needs the internet, Debian's package does not).
# Needs root or sudo only when something is missing.
set -euo pipefail
python="${1:-python3}"
venv="${2:-.venv}"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "bootstrap: need root to run: $*" >&2; return 1; fi
}
apt_install() {
    command -v apt-get >/dev/null || { echo "bootstrap: please install $* with your package manager" >&2; return 1; }
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

command -v "$python" >/dev/null || { echo "bootstrap: $python not found; install Python 3.11+" >&2; exit 1; }
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else
    f"bootstrap: Python 3.11+ is required, {sys.executable} is {sys.version.split()[0]}; "
    "run make PYTHON=python3.11 …")'
if ! "$python" -m venv --help >/dev/null 2>&1 || ! "$python" -c 'import ensurepip' 2>/dev/null; then
    apt_install python3-venv
fi
# Found the way pyzbar and pyusb look for them (ldconfig may not be on a normal user's PATH).
missing=()
for lib in zbar:libzbar0 usb-1.0:libusb-1.0-0; do
    "$python" -c "import ctypes.util, sys; sys.exit(not ctypes.util.find_library('${lib%%:*}'))" ||
        missing+=("${lib#*:}")
done
command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e '.[dev]'
