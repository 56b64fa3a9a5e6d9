#!/usr/bin/env bash
# Creates examples/python/.venv with the pinned requirements (idempotent:
# a venv whose requirements are already installed is left as it is).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${XGATE_PY_VENV:-$here/.venv}"
python="${PYTHON:-python3}"
stamp="$venv/.requirements.txt"
if [[ -x "$venv/bin/python" ]] && cmp -s "$here/requirements.txt" "$stamp"; then
    echo "python venv $venv is up to date"
    exit 0
fi
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
cp "$here/requirements.txt" "$stamp"
echo "python venv $venv ready"
