#!/usr/bin/env bash
# Runs every test of the workspace. Sets up what the interop tests need
# (a Python venv with slixmpp from PyPI) when it is missing; without it,
# those tests skip with a message unless XMPPD_REQUIRE_SERVICES=1.
set -euo pipefail
cd "$(dirname "$0")"

if ! .venv/bin/python -c 'import slixmpp' 2>/dev/null; then
    echo "test.sh: setting up .venv with slixmpp (tests/interop/requirements.txt)"
    if python3 -m venv .venv && .venv/bin/pip install --quiet -r tests/interop/requirements.txt; then
        :
    elif [ "${XMPPD_REQUIRE_SERVICES:-0}" = "1" ]; then
        echo "test.sh: could not install slixmpp" >&2
        exit 1
    else
        echo "test.sh: could not install slixmpp; interop tests will skip" >&2
    fi
fi
export XMPPD_TEST_PYTHON="$PWD/.venv/bin/python"

cargo test --workspace --locked "$@"
