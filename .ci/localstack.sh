#!/usr/bin/env bash
# LocalStack's own S3 (not moto) on 127.0.0.1, for the e2e suite's second S3 server.
# (With STS, which S3Bucket asks for the caller's account.)
#
#   .ci/localstack.sh start   # installs .ci/localstack-venv if needed, starts the server in the
#                             # background, waits for /_localstack/health and prints its URL
#   .ci/localstack.sh stop    # stops the server this script started and removes its data
#
# Then: BACKUPPOLICY_LOCALSTACK_URL=<the printed URL> python -m pytest tests/e2e
#
# No Docker: the localstack-core package from PyPI, in its own venv. It needs Python >= 3.13
# (2026.3.0 and 4.14.0 import warnings.deprecated, new in 3.13, whatever their metadata says);
# set LOCALSTACK_PYTHON to choose the interpreter. LOCALSTACK_PORT picks the port (default:
# a free one), LOCALSTACK_START_TIMEOUT the seconds to wait for it (default 90). Everything it
# writes is under .ci/localstack-data/.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.ci/localstack-venv
data=.ci/localstack-data
# Bump together; cbor2 6, pyOpenSSL 25.4 and cryptography 47 break this localstack-core.
requirements=(
  "localstack-core[base-runtime]==2026.3.0"
  "cbor2<6"
  "pyopenssl<25.4"
  "cryptography<47"
  "service-identity"
)

log() { echo "localstack: $*" >&2; }

find_python() {
  local candidate
  for candidate in "${LOCALSTACK_PYTHON:-}" python3.13 python3.14 \
    "$HOME"/.pyenv/versions/3.13*/bin/python "$HOME"/.pyenv/versions/3.14*/bin/python; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 13))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

install() {
  local stamp="$venv/.requirements" python
  if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "${requirements[*]}" ]; then
    return 0
  fi
  if ! python=$(find_python); then
    log "no Python >= 3.13 found (set LOCALSTACK_PYTHON)"
    return 1
  fi
  log "installing ${requirements[0]} into $venv with $python"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  mkdir -p "$data"
  if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}" \
    >"$data/install.log" 2>&1; then
    log "pip install failed; the end of $data/install.log:"
    tail -n 20 "$data/install.log" >&2
    return 1
  fi
  echo "${requirements[*]}" >"$stamp"
}

free_port() {
  "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

healthy() {
  "$venv/bin/python" - "$1" <<'EOF'
import json, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1] + "/_localstack/health", timeout=2) as response:
        services = json.load(response).get("services", {})
except Exception:
    sys.exit(1)
sys.exit(services.get("s3") not in {"available", "running"})
EOF
}

stop() {
  if [ -f "$data/pid" ]; then
    local pid
    pid=$(cat "$data/pid")
    # Only the server this script started: a stale pid may since belong to another process.
    if grep -qa localstack.runtime.main "/proc/$pid/cmdline" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$data/pid"
  fi
  rm -rf "$data/run"
}

start() {
  stop
  install
  local port="${LOCALSTACK_PORT:-$(free_port)}" run="$data/run"
  local url="http://127.0.0.1:$port"
  mkdir -p "$run/tmp" "$run/volume"
  # SERVICES: S3, and STS for GetCallerIdentity (the account in ownership tags).
  # GATEWAY_SERVER=hypercorn: the default server (twisted) ignores the host of GATEWAY_LISTEN
  # and listens on every interface. Offline and quiet: no SSL certificate download (it makes a
  # self-signed one), no analytics events, no DNS server (it would bind 0.0.0.0:53 and, in a
  # container, edit /etc/resolv.conf). State and temporary files stay under $run (TMPDIR is
  # where it puts its state when it does not run in its container).
  env SERVICES=s3,sts \
    GATEWAY_LISTEN="127.0.0.1:$port" \
    GATEWAY_SERVER=hypercorn \
    SKIP_SSL_CERT_DOWNLOAD=1 \
    DISABLE_EVENTS=1 \
    DNS_ADDRESS=0 \
    PERSISTENCE=0 \
    LOCALSTACK_VOLUME_DIR="$PWD/$run/volume" \
    TMPDIR="$PWD/$run/tmp" \
    "$venv/bin/python" -m localstack.runtime.main >"$data/server.log" 2>&1 &
  echo $! >"$data/pid"
  local deadline=$((SECONDS + ${LOCALSTACK_START_TIMEOUT:-90}))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if healthy "$url"; then
      log "S3 is up at $url (pid $(cat "$data/pid"), log $data/server.log)"
      echo "$url"
      return 0
    fi
    if ! kill -0 "$(cat "$data/pid")" 2>/dev/null; then
      break
    fi
    sleep 0.25
  done
  log "did not become healthy at $url within ${LOCALSTACK_START_TIMEOUT:-90} s; the end of $data/server.log:"
  tail -n 20 "$data/server.log" >&2
  stop
  return 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
