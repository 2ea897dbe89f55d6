#!/usr/bin/env bash
# ruff + mypy over the package as it is imported: `embedsuite` (core/) with `embedsuite.app`
# (apps/). mypy cannot follow setuptools' package-dir mapping of an editable install, so this
# builds a tree of symlinks, build/typecheck/embedsuite/, with that layout and checks it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=$(command -v "${PYTHON:-$ROOT/.venv/bin/python}")
tree=build/typecheck
rm -rf "$tree" && mkdir -p "$tree/embedsuite"
for entry in core/*; do
  name=$(basename "$entry")
  case "$name" in __pycache__|assets) continue ;; esac
  ln -s "$ROOT/$entry" "$tree/embedsuite/$name"
done
ln -s "$ROOT/apps" "$tree/embedsuite/app"
"$PY" -m ruff check core apps tests benchmarks demos scripts
cd "$tree" && "$PY" -m mypy --config-file "$ROOT/pyproject.toml" -p embedsuite
