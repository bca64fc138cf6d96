#!/usr/bin/env bash
# Runs checkov on terraform/ offline, with the flags tests/static/test_checkov.py uses, and prints
# the readable report (pass --quiet to see failures only, or -o json for the test's format).
# Installs the pinned checkov into .venv-checkov first if it is missing (as `make test` does).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CHECKOV_VERSION=3.3.30
CHECKOV="${CHECKOV:-.venv-checkov/bin/checkov}"

if [[ ! -x "$CHECKOV" ]]; then
  echo "checkov not found at $CHECKOV: installing checkov==$CHECKOV_VERSION into .venv-checkov" >&2
  python3 -m venv .venv-checkov
  .venv-checkov/bin/pip install --quiet "checkov==$CHECKOV_VERSION"
  touch .venv-checkov/.installed  # the Makefile's stamp
  CHECKOV=.venv-checkov/bin/checkov
fi

export BC_SKIP_MAPPING=TRUE
exec "$CHECKOV" -d terraform --framework terraform --compact \
  --download-external-modules false --skip-download "$@"
