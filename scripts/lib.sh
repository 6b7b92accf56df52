# shellcheck shell=bash
# Shared helpers for Slipway's scripts. Source it; do not run it.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export ROOT

log() { printf '[slipway] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The Debian client (/usr/bin/docker, 20.10) speaks the Debian engine's API;
# the newer client first on PATH negotiates down too, but prefer the matching one.
if [[ -x /usr/bin/docker ]]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
export DOCKER

# now_ms: wall clock in milliseconds.
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# timed LABEL CMD...: run CMD in a subshell with errexit on (so a function's
# failing step stops it), then log how long it took; returns CMD's status.
# Call it plainly, never in `if`/`||`/`&&` (bash then ignores errexit inside).
timed() {
  local label=$1 t0 rc ms flags=$-
  shift
  t0=$(now_ms)
  set +e
  (set -e; "$@")
  rc=$?
  [[ $flags != *e* ]] || set -e
  ms=$(($(now_ms) - t0))
  log "$(printf 'time %s: %d.%01ds' "$label" $((ms / 1000)) $((ms % 1000 / 100)))"
  return "$rc"
}

# wait_for SECONDS WHAT CMD...: poll CMD every half second until it succeeds.
wait_for() {
  local deadline=$(($(now_ms) + $1 * 1000)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    if (($(now_ms) > deadline)); then log "$what did not come up"; return 1; fi
    sleep 0.5
  done
}

# apt_install PKG...: apt-get install as root, running `apt-get update` once first.
apt_install() {
  if ((EUID != 0)); then
    log "need root to install Debian packages: $* (run: sudo apt-get install -y $*)"
    return 1
  fi
  local apt=(apt-get -o DPkg::Lock::Timeout=600 -q)
  if [[ -z ${SLIPWAY_APT_UPDATED:-} ]]; then
    log "apt-get update"
    "${apt[@]}" update >/dev/null
    SLIPWAY_APT_UPDATED=1
  fi
  log "installing Debian packages: $*"
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y "$@" >/dev/null
}

# need_root_install PKG[:BINARY]...: install the packages whose binary (a name
# on PATH or an absolute path; default: the package name) is missing.
need_root_install() {
  local spec bin missing=()
  for spec in "$@"; do
    bin=${spec#*:}
    if [[ $bin == /* ]]; then [[ -x $bin ]] && continue
    else command -v "$bin" >/dev/null && continue; fi
    missing+=("${spec%%:*}")
  done
  ((${#missing[@]} == 0)) || apt_install "${missing[@]}"
}

# ensure_node_clients: the npm clients of tests/e2e/js (pinned by its package-lock.json),
# installed with `npm ci` when node_modules is missing or older than the lock file.
ensure_node_clients() {
  local dir=$ROOT/tests/e2e/js stamp=$ROOT/tests/e2e/js/node_modules/.installed
  [[ -f $dir/package-lock.json ]] || return 0
  if ! command -v npm >/dev/null; then
    log "npm not found: tests/e2e/test_clients.py will skip (scripts/services up node)"
    [[ ${CI:-} != true ]] || return 1
    return 0
  fi
  if [[ ! -f $stamp || $dir/package-lock.json -nt $stamp ]]; then
    log "npm ci in tests/e2e/js (log: tests/e2e/js/npm.log)"
    if ! (cd "$dir" && npm ci --no-audit --no-fund) >"$dir/npm.log" 2>&1; then
      tail -n 30 "$dir/npm.log" >&2
      return 1
    fi
    touch "$stamp"
  fi
}

# ensure_venv: create .venv if missing; (re)install the project when
# pyproject.toml is newer than the stamp .venv/.installed.
ensure_venv() {
  local venv=$ROOT/.venv stamp=$ROOT/.venv/.installed
  if [[ ! -x $venv/bin/python ]]; then
    log "creating virtualenv .venv"
    python3 -m venv "$venv"
  fi
  if [[ ! -f $ROOT/pyproject.toml ]]; then
    log "no pyproject.toml yet: skipping the project install"
    return 0
  fi
  if [[ ! -f $stamp || $ROOT/pyproject.toml -nt $stamp ]]; then
    log "pip install -e '.[dev]' (log: .venv/pip.log)"
    if ! (cd "$ROOT" && "$venv/bin/pip" install -e '.[dev]') >"$venv/pip.log" 2>&1; then
      tail -n 30 "$venv/pip.log" >&2
      return 1
    fi
    touch "$stamp"
  fi
}
