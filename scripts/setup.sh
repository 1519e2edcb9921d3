#!/usr/bin/env bash
# Sets up Forge on a fresh machine: a virtual environment in .venv with Forge, its test tools,
# the Node packages for the interop tests, tmux for the end-to-end tests and bubblewrap, the
# sandbox jobs run in (a server with accounts refuses to start without one).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
# torch first, pinned, so that no range below pulls a multi-GB CUDA build
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "setup: installing torch==2.13.0"
  .venv/bin/pip install --quiet torch==2.13.0
fi
echo "setup: installing forge and its test tools"
.venv/bin/pip install --quiet -e ".[dev]"

if [ -f tests/interop/package-lock.json ] && command -v npm >/dev/null 2>&1; then
  echo "setup: installing Node packages for the interop tests"
  (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "setup: npm not found; the interop tests will be skipped" >&2
fi

if ! command -v tmux >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing tmux"
    apt-get update -qq && apt-get install -y -qq tmux >/dev/null
  else
    echo "setup: tmux not found; install it for the end-to-end tests" >&2
  fi
fi
if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing bubblewrap (the job sandbox)"
    apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null
  else
    echo "setup: bubblewrap (bwrap) not found; install it: jobs run in its sandbox" >&2
  fi
fi
echo "setup: done — try .venv/bin/forge --help"
