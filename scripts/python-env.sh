#!/usr/bin/env bash
# Creates .venv (git-ignored) with the Python packages the tests use, once.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
stamp=.venv/.installed-$(sha1sum tests/python/requirements.txt | cut -c1-12)
[ -f "$stamp" ] && exit 0
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r tests/python/requirements.txt
touch "$stamp"
