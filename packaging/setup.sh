#!/usr/bin/env bash
# Sets up everything studypack needs on a Debian/Ubuntu machine, as root or with sudo:
# system packages, a running Docker daemon, a local registry on 127.0.0.1:5000 (tests),
# and a virtualenv in .venv with studypack installed in it. Safe to run again.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

APT_PACKAGES=(
  docker.io            # the container engine (build, save, load, run)
  docker-registry      # a local registry, for digest-pinning tests
  busybox-static       # a shell for FROM-scratch trace images, without any download
  bubblewrap           # the rootless sandbox replay mode (bwrap)
  debootstrap          # makes a Debian base image locally
  podman               # Docker-compatible API socket: the engine code is tested against it too
  zstd tar coreutils   # the standard tools a bundle must open with
  minisign             # checks studypack signatures without studypack
  dpkg-repack fakeroot # rebuilds a .deb from installed files when no archive has it
  jq r-base-core r-cran-jsonlite  # a Debian program and an R study for the tests
  python3-venv git gcc libsqlite3-dev
  xvfb xauth imagemagick xdg-utils shared-mime-info desktop-file-utils
  openbox              # a window manager for the screenshots under Xvfb (real decorations)
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0
  libxcb-xkb1 libxkbcommon-x11-0 libegl1 libgl1 libfontconfig1 libdbus-1-3 fonts-dejavu-core
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Docker daemon: started in the background when it is not answering.
if ! docker info >/dev/null 2>&1; then
  log "starting the Docker daemon (no bridge network: containers run without network)"
  $SUDO mkdir -p /var/log
  # shellcheck disable=SC2024
  $SUDO nohup dockerd --bridge=none --iptables=false --ip6tables=false >/var/log/studypack-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "The Docker daemon did not start; see /var/log/studypack-dockerd.log" >&2; exit 1; }
fi

# A local registry without auth, bound to loopback only.
if ! (exec 3<>/dev/tcp/127.0.0.1/5000) 2>/dev/null; then
  log "starting a local registry on 127.0.0.1:5000"
  mkdir -p /var/lib/studypack-registry
  cat > /etc/studypack-registry.yml <<'YML'
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: /var/lib/studypack-registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
YML
  nohup docker-registry serve /etc/studypack-registry.yml >/var/log/studypack-registry.log 2>&1 &
  for _ in $(seq 1 30); do (exec 3<>/dev/tcp/127.0.0.1/5000) 2>/dev/null && break; sleep 0.5; done
fi

# The virtualenv, with studypack and its test tools.
if [ ! -x .venv/bin/python ]; then
  log "creating the virtualenv .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import studypack, pytest" 2>/dev/null || [ pyproject.toml -nt .venv/.installed ]; then
  log "installing studypack into .venv"
  # Build-backend chatter goes to a log; it is shown only when the install fails.
  if ! { .venv/bin/pip install -q --upgrade pip && .venv/bin/pip install -q -e ".[test]"; } \
      > .venv/install.log 2>&1; then
    cat .venv/install.log >&2
    echo "Installing studypack into .venv failed (log above, also in .venv/install.log)." >&2
    exit 1
  fi
  touch .venv/.installed
fi
log "ready: $(.venv/bin/studypack --version)"
