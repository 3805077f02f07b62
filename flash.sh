#!/usr/bin/env bash
# Put a provisioned terminal onto a Raspberry Pi's SD card.
#
#   ./flash.sh --bundle var/park/terminals/T-FISH-1.json --config station.json --root /media/$USER/rootfs [--wheels DIR]
#   ./flash.sh --board pico|esp32 --bundle var/park/terminals/TAP-1.json --config tap_board.json (--port DEV | --dest DIR)
#
# With --board, a tap point (tap/, `fieldpos provision --kinds tap`) goes onto a MicroPython board
# instead: its modules compiled with mpy-cross, copied with mpremote (tools/tap_flash.py says more).
#
# --root is the card's root filesystem, mounted on this machine after writing Raspberry Pi OS Lite
# onto it (any directory works too: a dry run to look at). What it writes there:
#
#   /opt/fieldpos/src/                       this project's source (what `pip install` needs)
#   /opt/fieldpos/wheels/                    with --wheels: a wheelhouse, so the first boot needs no internet
#   /opt/fieldpos/first-boot.sh              makes the `fieldpos` user and the venv (once; later boots skip it)
#   /var/lib/fieldpos/bundle.json            0600: the terminal's private key and broker login; the outbox
#                                            (seq, signed requests, offline queue) is written beside it
#   /etc/fieldpos/station.json               the station config
#   /etc/systemd/system/fieldpos-terminal.service, enabled: the till starts at boot and restarts on failure
#
# The card reader needs SPI and the display I2C: enable both (raspi-config, or dtparam=spi=on and
# dtparam=i2c_arm=on in the boot partition's config.txt) — this script does not touch the boot
# partition. After the first boot, on the Pi: `sudo systemctl stop fieldpos-terminal` then
# `sudo -u fieldpos /opt/fieldpos/venv/bin/fieldpos terminal check --bundle /var/lib/fieldpos/bundle.json
# --config /etc/fieldpos/station.json`, and start it again.
set -euo pipefail

usage() { sed -n '2,5p' "$0" >&2; exit 2; }
bundle="" config="" root="" wheels=""
case " $* " in *" --board "*)  # a tap point on a MicroPython board, not a Pi: its own tool
    here=$(dirname "$(realpath "$0")")
    python=${PYTHON:-$here/.venv/bin/python}; [ -x "$python" ] || python=python3
    PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m tools.tap_flash "$@" ;;
esac
while [ $# -gt 0 ]; do
    case "$1" in
        --bundle) bundle=${2:-}; shift 2 ;;
        --config) config=${2:-}; shift 2 ;;
        --root) root=${2:-}; shift 2 ;;
        --wheels) wheels=${2:-}; shift 2 ;;
        -h|--help) usage ;;
        *) echo "flash.sh: unknown argument $1" >&2; usage ;;
    esac
done
[ -n "$bundle" ] && [ -n "$config" ] && [ -n "$root" ] || usage
fail() { echo "flash.sh: $*" >&2; exit 1; }
[ -f "$bundle" ] || fail "no bundle at $bundle (fieldpos provision writes it)"
[ -f "$config" ] || fail "no station config at $config"
[ -d "$root" ] || fail "no root filesystem at $root (mount the SD card's rootfs partition)"
[ -z "$wheels" ] || [ -d "$wheels" ] || fail "no wheelhouse at $wheels"
# Paths as given, from where this was run; then work from the project's folder (the source to copy).
bundle=$(realpath "$bundle") config=$(realpath "$config") root=$(realpath "$root")
[ -z "$wheels" ] || wheels=$(realpath "$wheels")
cd "$(dirname "$0")"
python=${PYTHON:-}
if [ -z "$python" ]; then
    if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
fi
# Refuse a bundle or config the terminal would refuse at boot, with the very check `fieldpos terminal
# check` runs (terminal/board_files.py): better here than on a pole by the pond. It warns (stderr)
# when the bundle's broker host is a loopback address, which no Pi reaches.
"$python" -c 'import nacl, paho' 2>/dev/null \
    || fail "$python lacks the project's packages: run tools/dev.sh (it makes .venv) or set PYTHON to a Python that has them"
terminal_id=$("$python" -m terminal.board_files "$bundle" "$config") || fail "bundle or config not usable (above)"

install -d "$root/opt/fieldpos" "$root/etc/fieldpos" "$root/etc/systemd/system/multi-user.target.wants"
install -d -m 0700 "$root/var/lib/fieldpos"
# The source, without what only a developer's machine has.
rm -rf "$root/opt/fieldpos/src"
install -d "$root/opt/fieldpos/src"
tar --exclude='./.venv' --exclude='./var' --exclude='./.git' --exclude='./tests' --exclude='*.egg-info' \
    --exclude='__pycache__' --exclude='./.pytest_cache' --exclude='./.hypothesis' -cf - . \
    | tar -xf - -C "$root/opt/fieldpos/src"
if [ -n "$wheels" ]; then
    rm -rf "$root/opt/fieldpos/wheels"
    cp -r "$wheels" "$root/opt/fieldpos/wheels"
fi
install -m 0600 "$bundle" "$root/var/lib/fieldpos/bundle.json"
install -m 0644 "$config" "$root/etc/fieldpos/station.json"

cat > "$root/opt/fieldpos/first-boot.sh" <<'SH'
#!/bin/sh
# Run by systemd (as root, before the till starts). Does its work once; later boots skip it.
set -eu
if ! id fieldpos >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/fieldpos --shell /usr/sbin/nologin fieldpos
fi
for group in spi i2c dialout input gpio; do  # reader, display, printer UART, keypad
    if getent group "$group" >/dev/null; then usermod -aG "$group" fieldpos; fi
done
chown -R fieldpos:fieldpos /var/lib/fieldpos
chmod 0700 /var/lib/fieldpos
chmod 0600 /var/lib/fieldpos/bundle.json
if [ ! -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then
    # Raster receipts print Chinese with this font; a text-mode (GB18030) printer does not need it.
    apt-get install -y -q fonts-wqy-microhei || echo "first-boot: fonts-wqy-microhei not installed (no network?)" >&2
fi
if [ ! -x /opt/fieldpos/venv/bin/fieldpos ]; then
    # System site packages: Raspberry Pi OS ships python3-spidev, which has no wheel on PyPI.
    python3 -m venv --system-site-packages /opt/fieldpos/venv.new
    if [ -d /opt/fieldpos/wheels ]; then
        /opt/fieldpos/venv.new/bin/pip install --no-index --find-links /opt/fieldpos/wheels /opt/fieldpos/src
    else
        /opt/fieldpos/venv.new/bin/pip install /opt/fieldpos/src
    fi
    mv /opt/fieldpos/venv.new /opt/fieldpos/venv  # only a finished venv counts as installed
fi
SH
chmod 0755 "$root/opt/fieldpos/first-boot.sh"

cat > "$root/etc/systemd/system/fieldpos-terminal.service" <<UNIT
[Unit]
Description=fieldpos terminal $terminal_id
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User=fieldpos
Group=fieldpos
Environment=FIELDPOS_HW=pi
# "+": the first-boot step runs as root (it makes the user and the venv); the till never does.
ExecStartPre=+/opt/fieldpos/first-boot.sh
ExecStart=/opt/fieldpos/venv/bin/fieldpos terminal run --bundle /var/lib/fieldpos/bundle.json --config /etc/fieldpos/station.json
# Exit 70 after repeated failed turns (terminal.runner): start again on fresh device handles.
Restart=on-failure
RestartSec=2
TimeoutStartSec=15min
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=/var/lib/fieldpos
ProtectHome=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
UNIT
ln -sf ../fieldpos-terminal.service "$root/etc/systemd/system/multi-user.target.wants/fieldpos-terminal.service"

echo "flashed $terminal_id onto $root: the till starts at the next boot (the first boot installs it)."
