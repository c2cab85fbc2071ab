#!/usr/bin/env bash
# Contract test of the HTTP API against its OpenAPI document.
#
#   bash scripts/schemathesis.sh            # needs .build/debug/certdeploy (swift build --product certdeploy)
#
# 1. Installs, when missing, schemathesis and openapi-spec-validator (pinned) into their own venv at
#    /opt/certdeploy-schemathesis (from PyPI, with Debian's python3 + python3-venv).
# 2. Validates docs/reference/openapi.yaml with openapi-spec-validator.
# 3. Starts `certdeploy serve` on a free loopback port with a throwaway data directory, an admin key and a
#    secrets passphrase made up for this run, and waits for GET /ready.
# 4. Checks that the served document is the committed one, seeds the server with real objects
#    (scripts/schemathesis_seed.py: certificates, targets, a deployment) and binds half of the generated path
#    parameters to them, then runs schemathesis against it, its stateful phase following the document's links: no
#    5xx, and every status code, content type, documented header and body matches the document; routes that need a
#    key refuse a request without one; no operation answers only 404 (`missing_test_data` fails the run). The number of examples is bounded (SCHEMATHESIS_MAX_EXAMPLES, default 100) so the run
#    stays within about three minutes on two cores.
# 5. Stops the server by its PID (also on failure or interrupt). On failure it prints the end of the server's log and
#    keeps the scratch directory (named in the output) for a look.
#
# Environment: CERTDEPLOY_BINARY (default .build/debug/certdeploy), SCHEMATHESIS_MAX_EXAMPLES (default 100),
# SCHEMATHESIS_SEED (default: random; schemathesis prints the seed it used, pass it back to reproduce a run).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

venv=/opt/certdeploy-schemathesis
schemathesis_version=4.32.5
validator_version=0.9.0
spec=docs/reference/openapi.yaml
binary=${CERTDEPLOY_BINARY:-.build/debug/certdeploy}
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-100}
# A hard stop well above the expected run time, so a hung request cannot hold CI.
run_timeout=240

say() { echo "schemathesis.sh: $*"; }
die() { echo "schemathesis.sh: $*" >&2; exit 1; }

# --- 1. The tools, in their own venv (idempotent) ---------------------------------------------------------------

installed_versions() {
  "$venv/bin/python" - <<'EOF' 2>/dev/null || true
from importlib.metadata import version
print(version("schemathesis"), version("openapi-spec-validator"))
EOF
}

if [ "$(installed_versions)" != "$schemathesis_version $validator_version" ]; then
  install_cmd="/usr/bin/python3 -m venv $venv && $venv/bin/pip install --disable-pip-version-check schemathesis==$schemathesis_version openapi-spec-validator==$validator_version"
  if [ "$(id -u)" -ne 0 ] && [ ! -w "$(dirname "$venv")" ]; then
    die "schemathesis $schemathesis_version is not installed in $venv; as root run:
  $install_cmd"
  fi
  [ -x /usr/bin/python3 ] || die "/usr/bin/python3 is missing: apt-get install python3 python3-venv"
  say "installing schemathesis $schemathesis_version and openapi-spec-validator $validator_version into $venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "schemathesis==$schemathesis_version" "openapi-spec-validator==$validator_version"
  [ "$(installed_versions)" = "$schemathesis_version $validator_version" ] || die "the install into $venv did not give the pinned versions"
fi

# --- 2. The document is valid OpenAPI ---------------------------------------------------------------------------

[ -f "$spec" ] || die "$spec is missing: generate it with 'swift run certdeploy openapi --out $spec'"
"$venv/bin/openapi-spec-validator" "$spec"

# --- 3. A server of our own --------------------------------------------------------------------------------------

[ -x "$binary" ] || die "$binary is missing: build it with 'swift build --product certdeploy'"

work=$(mktemp -d /tmp/certdeploy-schemathesis.XXXXXX)
server_pid=
stuck_pid=
netns=
status=1

cleanup() {
  if [ -n "$stuck_pid" ]; then kill -KILL "$stuck_pid" 2>/dev/null || true; wait "$stuck_pid" 2>/dev/null || true; fi
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -f "$work/server.log" ]; then
    echo "---- last 60 lines of the server's log ($work/server.log) ----" >&2
    tail -n 60 "$work/server.log" >&2
    echo "---- end of the server's log ----" >&2
  else
    rm -rf "$work"
  fi
  if [ -n "$netns" ]; then ip netns del "$netns" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

random_text() {
  "$venv/bin/python" -c "import secrets, string; print(''.join(secrets.choice(string.ascii_letters + string.digits) for _ in range($1)))"
}

# Generated requests create targets with made-up hosts, and the stateful phase then tests and deploys to what it
# created: everything that speaks to the network runs in a network namespace of its own with only loopback up, so no
# packet (nor a DNS query) can leave the machine. Without root there is no namespace, and no stateful phase either.
in_ns=()
phases=examples,coverage,fuzzing
if [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null 2>&1 && ip netns add "certdeploy-st-$$" 2>/dev/null; then
  netns="certdeploy-st-$$"
  ip netns exec "$netns" ip link set lo up
  in_ns=(ip netns exec "$netns")
  phases=examples,coverage,fuzzing,stateful
else
  say "no network namespace (needs root and iproute2): running without the stateful phase"
fi

port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
api_key=$(random_text 40)
base="http://127.0.0.1:$port"

say "starting $binary serve on $base"
# Generous rate limits: the run checks the contract, not the limiter (429 stays documented and allowed).
CERTDEPLOY_API_KEYS="admin:$api_key:admin" CERTDEPLOY_SECRET_KEY="$(random_text 40)" \
  "${in_ns[@]}" "$binary" serve --host 127.0.0.1 --port "$port" --data-dir "$work/data" \
  --rate-limit 1000 --authenticated-rate-limit 5000 >"$work/server.log" 2>&1 &
server_pid=$!

ready=
for _ in $(seq 1 120); do
  kill -0 "$server_pid" 2>/dev/null || die "the server exited before it was ready"
  if "${in_ns[@]}" curl -fsS -o /dev/null --max-time 2 "$base/ready" 2>/dev/null; then ready=1; break; fi
  sleep 0.5
done
[ -n "$ready" ] || die "the server did not answer GET /ready within 60 s"

# --- 4. The contract ---------------------------------------------------------------------------------------------

"${in_ns[@]}" curl -fsS --max-time 10 -H "Authorization: Bearer $api_key" "$base/api/v1/openapi.yaml" -o "$work/served.yaml"
if ! cmp -s "$work/served.yaml" "$spec"; then
  diff -u "$spec" "$work/served.yaml" | head -n 40 >&2 || true
  die "the served document differs from $spec: regenerate it with 'swift run certdeploy openapi --out $spec'"
fi

# Real objects for the path parameters to name (otherwise nearly every case of a `/{id}` route is a 404), and the
# schemathesis.toml that binds the parameters to them (see scripts/schemathesis_seed.py).
# A listener that accepts SSH connections and never answers: the seeded `seed-stuck` target's first deployment hangs in
# its handshake, so the ones queued behind it stay cancellable for the whole run.
"${in_ns[@]}" "$venv/bin/python" -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
print(s.getsockname()[1], flush=True)
held = []
while True:
    held.append(s.accept()[0])
' >"$work/stuck.port" &
stuck_pid=$!
for _ in $(seq 1 50); do [ -s "$work/stuck.port" ] && break; sleep 0.1; done
[ -s "$work/stuck.port" ] || die "the stuck listener did not start"
"${in_ns[@]}" "$venv/bin/python" "$repo/scripts/schemathesis_seed.py" "$base" "$api_key" "$work" "$(cat "$work/stuck.port")" || die "seeding the server failed"

seed_args=()
if [ -n "${SCHEMATHESIS_SEED:-}" ]; then seed_args=(--seed "$SCHEMATHESIS_SEED"); fi

say "running schemathesis $schemathesis_version (at most $max_examples examples per operation)"
run_schemathesis() {
  # From the scratch directory, so no report or cache lands in the work tree.
  (
    cd "$work"
    # Through scripts/schemathesis_cli.py: the schemathesis CLI with a work-around for a CPython 3.11 bug (see there).
    timeout --kill-after=10 "$run_timeout" "${in_ns[@]}" "$venv/bin/python" "$repo/scripts/schemathesis_cli.py" run "$base/api/v1/openapi.yaml" \
      --header "Authorization: Bearer $api_key" \
      --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,ignored_auth \
      --phases "$phases" \
      --max-examples "$max_examples" \
      --workers 2 \
      --request-timeout 20 \
      --generation-database none \
      --no-color \
      "${seed_args[@]}"
  ) 2>&1 | tee "$work/schemathesis.out"
  return "${PIPESTATUS[0]}"
}
code=0
run_schemathesis || code=$?
# A crash of the tool itself (seen before scripts/schemathesis_cli.py worked around it: CPython 3.11's "AST constructor
# recursion depth mismatch" inside Hypothesis while it describes a strategy) is reported as a "Runtime Error" with no
# check failure. Run once more then; a real
# failure (a FAILURES section: a 5xx, a schema or status mismatch, a route answering without a key) never is.
if [ "$code" -ne 0 ] && [ "$code" -ne 124 ] && ! grep -q "^=* FAILURES =*$" "$work/schemathesis.out" \
  && grep -q "Runtime Error" "$work/schemathesis.out"; then
  say "schemathesis itself crashed (no API check failed); running it once more"
  code=0
  run_schemathesis || code=$?
fi
if [ "$code" -ne 0 ]; then
  [ "$code" -eq 124 ] && echo "schemathesis.sh: schemathesis did not finish within $run_timeout s" >&2
  die "schemathesis found problems (exit $code)"
fi

status=0
say "the API matches $spec"
