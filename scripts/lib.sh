# shellcheck shell=bash
# Shared helpers for the start-*.sh scripts. Source it; do not run it.
set -euo pipefail

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# wait_tcp HOST PORT TIMEOUT_S : succeed once a TCP connect works
wait_tcp() {
  local host=$1 port=$2 end=$((SECONDS + ${3:-30}))
  while ((SECONDS < end)); do
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}

# pid_alive PIDFILE PATTERN : true when PIDFILE names a live process whose cmdline has PATTERN
pid_alive() {
  local f=$1 pat=$2 pid
  [[ -s $f ]] || return 1
  pid=$(tr -dc '0-9' <"$f")
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$pat"
}

# apt_install PKG... : install Debian packages without letting their postinst start
# the system-wide service (which would grab the default ports).
apt_install() {
  local created_policy=0 rc=0
  export DEBIAN_FRONTEND=noninteractive
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  if ! apt-get install -y -q "$@" >&2; then
    apt-get update -q >&2 && apt-get install -y -q "$@" >&2 || rc=$?
  fi
  ((created_policy)) && rm -f /usr/sbin/policy-rc.d
  return $rc
}

rss_kib() { awk '/^VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# free_port : print a TCP port on 127.0.0.1 that nothing listens on right now
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
