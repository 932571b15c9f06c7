#!/usr/bin/env bash
# The whole test suite, from a fresh clone, as root on Debian/Ubuntu:
# installs what it needs, lints, type-checks, brings the lab up, runs pytest (unit, lab and
# nbval regression of the notebooks), and always takes the lab down again.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH" RUNBOOKS_HEADLESS=1 RUNBOOKS_REQUIRE_LAB=1

echo "== ruff"; ruff check runbooks_lib tests bench
echo "== nbqa ruff"; nbqa ruff notebooks
echo "== mypy"; mypy

lab_up=0
cleanup() { if [ "$lab_up" = 1 ]; then runbooks lab down --name lab >/dev/null 2>&1 || true; fi; }
trap cleanup EXIT
if ! runbooks lab status --name lab >/dev/null 2>&1; then
  echo "== lab up"; runbooks lab up --name lab --nodes 3; lab_up=1
fi

echo "== pytest"
pytest tests notebooks --nbval-lax --nbval-current-env \
  --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider --durations=25 "$@"
