#!/usr/bin/env bash
# `make run`: start `certdeploy serve` on SQLite under ./data with everything a first run needs.
# On first use it creates, under ./data (mode 0700, files 0600):
#   api-keys     an admin key (name "admin"), read via CERTDEPLOY_API_KEYS_FILE (edit it and send SIGHUP to rotate)
#   secret-key   the passphrase that encrypts secrets at rest, via CERTDEPLOY_SECRET_KEY_FILE (back it up!)
# Keys already in the environment win. Extra arguments go to `certdeploy serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${CERTDEPLOY_DATA_DIR:-./data}"
mkdir -p "$data"
chmod 700 "$data"
umask 077
random() { head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 40; }
if [[ -z "${CERTDEPLOY_API_KEYS:-}" && -z "${CERTDEPLOY_API_KEYS_FILE:-}" ]]; then
  if [[ ! -s "$data/api-keys" ]]; then
    echo "admin:$(random):admin" > "$data/api-keys"
    echo "created an admin API key in $data/api-keys"
  fi
  export CERTDEPLOY_API_KEYS_FILE="$data/api-keys"
  key="$(grep -m1 '^admin:' "$data/api-keys" | cut -d: -f2)"
fi
if [[ -z "${CERTDEPLOY_SECRET_KEY:-}" && -z "${CERTDEPLOY_SECRET_KEY_FILE:-}" ]]; then
  if [[ ! -s "$data/secret-key" ]]; then
    random > "$data/secret-key"
    echo "created the secrets passphrase in $data/secret-key (back it up: without it stored secrets cannot be read)"
  fi
  export CERTDEPLOY_SECRET_KEY_FILE="$data/secret-key"
fi
port="${CERTDEPLOY_PORT:-8080}"
echo
echo "certdeploy server on http://127.0.0.1:$port (SQLite in $data). In another shell:"
echo "  export CERTDEPLOY_URL=http://127.0.0.1:$port"
[[ -n "${key:-}" ]] && echo "  export CERTDEPLOY_API_KEY=\$(grep -m1 '^admin:' $data/api-keys | cut -d: -f2)"
echo "  .build/debug/certdeploy targets list"
echo
exec .build/debug/certdeploy serve --data-dir "$data" --port "$port" "$@"
