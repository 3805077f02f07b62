#!/usr/bin/env bash
# Bootstrap a fresh machine and run fieldpos: `tools/dev.sh demo` or `tools/dev.sh test [pytest args]`.
# Creates .venv, installs the project with its dev extras (again only when pyproject.toml changes),
# and makes sure Mosquitto and a CJK font are installed (Debian packages, when running as root).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "fieldpos needs Python 3.11 or newer (found: $("$python" --version 2>&1))" >&2
    exit 1
fi

need_debian=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_debian+=(mosquitto)
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need_debian+=(fonts-wqy-microhei)
[ -x /usr/bin/chromium ] || need_debian+=(chromium)  # the console's browser tests drive it by path
command -v node >/dev/null 2>&1 || need_debian+=(nodejs)
command -v npm >/dev/null 2>&1 || need_debian+=(npm)
# The tap's native Ed25519 for an RP2040 (tap/native) builds only when MPY_DIR names a MicroPython tree.
[ -z "${MPY_DIR:-}" ] || command -v arm-none-eabi-gcc >/dev/null 2>&1 || need_debian+=(gcc-arm-none-eabi)
if [ ${#need_debian[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing ${need_debian[*]} (Debian packages)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_debian[@]}" >/dev/null
    else
        echo "fieldpos needs: ${need_debian[*]} — install them (e.g. sudo apt-get install ${need_debian[*]}) and run again" >&2
        exit 1
    fi
fi

if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
stamp=.venv/.fieldpos-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[dev]'
    echo "$want" > "$stamp"
fi
# MicroPython's WebAssembly port for the tap's tests (tests/helpers/micropython.py), kept in the
# checkout: nothing is installed outside it.
wasm_port=@micropython/micropython-webassembly-pyscript@1.27.0
if [ ! -f .cache/node/node_modules/@micropython/micropython-webassembly-pyscript/micropython.mjs ]; then
    mkdir -p .cache/node
    npm install --silent --no-save --no-audit --no-fund --prefix .cache/node "$wasm_port" >/dev/null
fi

# Run a second time, on PostgreSQL, by `tools/dev.sh test`: the intake's edges (every request kind's
# statements), idempotency, verify, offline sales. A park made on PostgreSQL costs about 2 s (its
# migrations), so only these: 37 s more here on two cores (the same files on SQLite: 12 s). The files that take the
# store_backend fixture (test_store_backends, test_console_store, test_rental_report,
# test_ledger_workers, test_sql_dialect) run on both backends in the first pass already. Others pass on
# PostgreSQL too (test_rental_ledger, test_members, test_report_books, test_set_aside, ...) but cost
# more there: FIELDPOS_TEST_STORE=postgresql tools/dev.sh test tests/<file> runs one.
postgresql_files=(
    tests/test_ledger_intake_edges.py tests/test_idempotency.py tests/test_ledger_verify_edges.py
    tests/test_offline_ledger.py
)

command=${1:-test}
shift || true
case "$command" in
    demo) exec .venv/bin/fieldpos demo "$@" ;;
    # The whole suite (no arguments) runs one pytest worker per core, a test file to a worker (a
    # file's module fixtures are built once); FIELDPOS_TEST_WORKERS=1 runs it in one process. Then
    # postgresql_files run again with every park's books on PostgreSQL (a database of their own on
    # 127.0.0.1:5432; tests/helpers/postgres.py starts or installs the server when missing).
    test) if [ $# -gt 0 ]; then
              exec .venv/bin/python -m pytest "$@"
          fi
          workers=()
          [ "${FIELDPOS_TEST_WORKERS:-auto}" = 1 ] || workers=(-n "${FIELDPOS_TEST_WORKERS:-auto}" --dist loadfile)
          status=0
          .venv/bin/python -m pytest "${workers[@]}" || status=$?
          echo "the ledger's store and reports again, on PostgreSQL (FIELDPOS_TEST_STORE=postgresql)"
          FIELDPOS_TEST_STORE=postgresql .venv/bin/python -m pytest "${workers[@]}" "${postgresql_files[@]}" || status=$?
          exit $status ;;
    bench) exec .venv/bin/python "bench/${1:-e2e}.py" "${@:2}" ;;
    # The README's pictures, drawn again: the receipts by the till's own state machine, the console's
    # and the portal's pages by the browser tests (which write to docs/img only when asked to).
    pictures) .venv/bin/python -m host_sim.receipt_pictures
              FIELDPOS_DOCS_PICTURES=1 exec .venv/bin/python -m pytest -q tests/test_console_browser.py tests/test_portal_browser.py ;;
    *) echo "usage: tools/dev.sh demo|test|bench|pictures [args]" >&2; exit 2 ;;
esac
