#!/usr/bin/env bash
# The main job, from a fresh clone, as root on Debian/Ubuntu: installs what it needs, brings
# the lab up if the default parameters target it, runs every built chapter headless in plan
# mode, and prints where the reports are. Extra arguments go to `runbooks run-all`
# (e.g. -p parameters/prod.yaml, --mode apply --set confirm=prod).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/runbooks run-all "$@"
