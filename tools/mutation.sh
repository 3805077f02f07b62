#!/usr/bin/env bash
# Mutation testing in bounded time (8.5 minutes for a whole run on the shared 2-core machine): each mutant of protocol/,
# the ledger's postings, verify and intake, and the terminal's outbox and core is applied alone to a
# copy of the committed tree and that module's tests are run; prints killed/survived per module.
# Not part of the default test run. Options: see `tools/mutation.sh --help` (tools/mutation.py).
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
[ -x "$python" ] || python=${PYTHON:-python3}
exec timeout 1200 "$python" -m tools.mutation "$@"
