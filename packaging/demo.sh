#!/usr/bin/env bash
# Sets up everything (see setup.sh), then runs the main job on the example study:
# create a bundle, verify it, replay it, and print the reproduction report.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$here/packaging/setup.sh"
cd "$here"
exec .venv/bin/studypack demo "$@"
