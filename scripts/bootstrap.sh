#!/usr/bin/env bash
# Set up everything embedsuite needs in ./.venv, then run it.
#   bash scripts/bootstrap.sh serve [embedsuite serve options]   -> the app on the default encoder
#   bash scripts/bootstrap.sh test  [pytest options]             -> the whole test suite
# torch (the exact CPU wheel named in scripts/constraints.txt) is installed FIRST: any
# other torch request would pull a multi-GB CUDA build. Re-running skips work already done.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"

pick_python() {
  for c in "${PYTHON:-}" python3.11 python3; do
    [ -n "$c" ] || continue
    if command -v "$c" >/dev/null 2>&1 &&
       "$c" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
      echo "$c"; return 0
    fi
  done
  for c in "${PYTHON:-}" python3.11 python3; do
    [ -n "$c" ] && command -v "$c" >/dev/null 2>&1 && { echo "$c"; return 0; }
  done
  echo "bootstrap: no python3 found; install Python 3.11" >&2; return 1
}

stamp_of() { cat pyproject.toml scripts/bootstrap.sh scripts/constraints.txt | sha256sum | cut -c1-16; }

setup() {
  local want; want=$(stamp_of)
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.embedsuite-stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  local py; py=$(pick_python)
  echo "bootstrap: creating $VENV with $py ($($py --version 2>&1))" >&2
  [ -x "$VENV/bin/python" ] || "$py" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  # scripts/constraints.txt pins the exact CPU torch; the package itself asks for a range.
  echo "bootstrap: installing torch (CPU, scripts/constraints.txt) first" >&2
  "$VENV/bin/python" -m pip install -q -c scripts/constraints.txt torch
  echo "bootstrap: installing embedsuite[all] and its dependencies" >&2
  "$VENV/bin/python" -m pip install -q -c scripts/constraints.txt -e ".[all]"
  echo "$want" > "$VENV/.embedsuite-stamp"
}

browser() {
  # Debian's chromium for the browser tests (Playwright's own download does not work here),
  # and fonts-noto-cjk: Chinese / Japanese / Korean in the browser and in server-drawn plots.
  local missing=""
  command -v chromium >/dev/null 2>&1 || missing="chromium"
  [ -d /usr/share/fonts/opentype/noto ] && ls /usr/share/fonts/opentype/noto/NotoSansCJK* \
    >/dev/null 2>&1 || missing="$missing fonts-noto-cjk"
  if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "bootstrap: installing Debian's$missing for the browser tests" >&2
      # shellcheck disable=SC2086  # one word per package
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing \
        >/dev/null) || echo "bootstrap:$missing could not be installed; browser tests will skip" \
        "(without the fonts, plots draw CJK text as boxes)" >&2
    else
      echo "bootstrap:$missing not found and not root; browser tests will skip or draw CJK as boxes" >&2
    fi
  fi
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  serve)
    setup
    exec "$VENV/bin/embedsuite" serve "$@"
    ;;
  test)
    setup
    browser
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  setup)
    setup
    ;;
  *)
    echo "usage: bash scripts/bootstrap.sh serve|test|setup [args...]" >&2
    exit 2
    ;;
esac
