# shellcheck shell=sh
# The fixed part of every apply script, after the generated header (`set -u`, `umask 022`,
# `SD=<state directory>`, `RUN=<run id>`). Takes the host's lock and defines the functions the
# generated steps call. Output is one record per line, parsed by apply.rs:
# `OK|FAIL|VALIDATE|LOCKED|DONE <tab> resource <tab> detail`, newlines in the detail sent as \036.
: "${SD:?}" "${RUN:?}"
export LC_ALL=C
say() { printf '%s\t%s\t%s\n' "$1" "$2" "$3"; }
fail() { say FAIL "$1" "$2"; exit 1; }
fail_owner() { fail "$1" "cannot set owner/mode $2 (do that user and group exist?)"; }
# own PATH OWNER GROUP [LIKE]: the owner and group the catalog manages. An empty OWNER or GROUP
# is unmanaged: that of LIKE (the file PATH replaces) when it exists, else as created (root's).
own() {
  o=$2 g=$3
  if [ -n "${4:-}" ] && [ -e "$4" ]; then
    # Both unmanaged: one program, not a stat for each.
    if [ -z "$o$g" ]; then chown --reference="$4" -- "$1"; return; fi
    [ -n "$o" ] || o=$(stat -L -c %u -- "$4") || return 1
    [ -n "$g" ] || g=$(stat -L -c %g -- "$4") || return 1
  fi
  # `chown USER:` would also set USER's login group.
  case "$o:$g" in
    :) ;;
    *:) chown -- "$o" "$1" ;;
    *) chown -- "$o:$g" "$1" ;;
  esac
}
# received: the end marker that follows the staged files' bytes on stdin. Anything else means
# the input ended early (the connection broke), so a staged file may be short: none is used.
received() {
  IFS= read -r end || end=
  [ "$end" = "END $RUN" ] || fail state "the new files' contents arrived incomplete (connection lost?), so nothing was replaced"
}
tail_out() { tail -c 2000 "$SD/out" 2>/dev/null | tr '\n' '\036'; }
# SD_INIT chooses between a service's systemd and command forms in the commands below.
if [ -d /run/systemd/system ]; then SD_INIT=systemd; else SD_INIT=other; fi
export SD_INIT
mkdir -p "$SD/backup" && chmod 0700 "$SD" || fail state "cannot create $SD"
exec 9>>"$SD/lock" || fail state "cannot open $SD/lock"
if ! flock -n 9; then say LOCKED - "$(cat "$SD/lock.owner" 2>/dev/null || echo unknown)"; exit 75; fi
# The command of the composition running now, if any: stopping the run stops it too.
CMD=
# stop CODE: ends the run on a signal (its client is gone, or someone stopped it); the EXIT
# trap then clears what was staged, and the lock goes with this shell.
stop() { if [ -n "$CMD" ]; then kill -TERM "$CMD" 2>/dev/null; fi; exit "$1"; }
# The run ends with its SSH session: a heartbeat line fails once the client is gone (or this
# shell is), and the run is then stopped, so a killed client never leaves the host locked.
( trap '' PIPE; while sleep 5 >/dev/null 2>&1; do kill -0 $$ 2>/dev/null && printf 'ALIVE\t-\t-\n' 2>/dev/null || { kill -TERM $$ 2>/dev/null; exit 0; }; done ) </dev/null 9>&- &
WATCHDOG=$!
# What an ended run leaves behind is cleared (the script redefines cleanup with its staged files).
cleanup() { :; }
trap 'cleanup; kill "$WATCHDOG" 2>/dev/null' EXIT
trap 'stop 129' HUP
trap 'stop 130' INT
trap 'stop 143' TERM
# bounded SECONDS COMMAND...: COMMAND under timeout(1), which kills it with everything it
# started after SECONDS; a signal to the run stops it at once.
bounded() {
  limit=$1; shift
  timeout -k 10 "$limit" "$@" &
  CMD=$!
  wait "$CMD"; rc=$?
  CMD=
  case $rc in 124|137) echo "timed out after $limit s" ;; esac
  return "$rc"
}
# expect_state RUN: the host's applied record is still the one of run RUN (`-`: none), as the
# plan saw it; otherwise the run stops before changing anything.
expect_state() {
  now=-
  if [ -r "$SD/applied.json" ]; then now=$(sed -n 's/.*"run_id":"\([^"]*\)".*/\1/p' "$SD/applied.json"); fi
  if [ "$now" != "$1" ]; then say STALE - "$(tr -d '\n' < "$SD/applied.json" 2>/dev/null)"; exit 76; fi
}
# fd 9 holds the lock: children must not inherit it, or a daemon started here would keep
# the host locked after the run. run_cmd COMMAND SECONDS: a command of the composition, run
# from a private file (so it is no process's argument), reading nothing (the rest of this
# script may be on stdin), within SECONDS, its output in $SD/out for tail_out.
run_cmd() {
  ( umask 077; printf '%s\n' "$1" > "$SD/cmd" ) || return 1
  bounded "$2" sh "$SD/cmd" >"$SD/out" 2>&1 </dev/null 9>&-
  rc=$?; rm -f "$SD/cmd"; return "$rc"
}
# check_cmd COMMAND: a status command of the composition, yes or no, within 30 s; fed to its
# shell on stdin, so it is no process's argument.
check_cmd() { printf '%s' "$1" | timeout -k 5 30 sh -c 'eval "$(cat)" </dev/null' >/dev/null 2>&1 9>&-; }
# wait_status STATUS_COMMAND: up to 10 s for a started service to say it runs.
wait_status() { i=0; while [ $i -lt 50 ]; do if check_cmd "$1"; then return 0; fi; sleep 0.2; i=$((i+1)); done; return 1; }
# wait_ready COMMAND SECONDS STATUS: a started service's ready check, tried every half second
# (each try within 30 s) until it passes (0), SECONDS are over (1), or the STATUS command says
# the service stopped running (2: it died starting, so waiting on is pointless); the last try's
# output in $SD/out.
wait_ready() {
  end=$(($(date +%s) + $2 + 1))
  while :; do
    printf '%s' "$1" | timeout -k 5 30 sh -c 'eval "$(cat)" </dev/null' >"$SD/out" 2>&1 9>&- && return 0
    check_cmd "$3" || return 2
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 0.5
  done
}
# log_tail COMMAND: what COMMAND prints of a service's log (its last lines), for a failure.
log_tail() {
  lines=$(printf '%s' "$1" | timeout -k 5 10 sh -c 'eval "$(cat)" </dev/null' 2>&1 9>&- | tail -c 3000 | tr '\n' '\036')
  if [ -n "$lines" ]; then printf '\036last lines of its log:\036%s' "$lines"; fi
}
# grep exits 1 when nothing is left, 2 on a write error: only a complete file replaces the old.
done_restart() {
  [ -f "$SD/pending-restarts" ] || return 0
  grep -vxF -- "$1" "$SD/pending-restarts" > "$SD/pending-restarts.tmp"
  [ $? -le 1 ] && mv -f "$SD/pending-restarts.tmp" "$SD/pending-restarts" || fail state "cannot update $SD/pending-restarts (disk full?)"
}
# backup PATH...: a copy of each file that exists in this run's backup directory, all in one
# cp; when that fails, one at a time, to name the file that cannot be copied and why. Every
# backup is taken before the first rename, so a failed one leaves every managed file as it was.
backup() {
  n=$#
  for f; do if [ -e "$f" ] || [ -L "$f" ]; then set -- "$@" "$f"; fi; done
  shift "$n"
  [ $# -gt 0 ] || return 0
  dest=$SD/backup/$RUN
  { mkdir -p "$dest" && cp -P -p --parents -- "$@" "$dest/"; } 2>/dev/null && return 0
  for f; do
    err=$( { mkdir -p "$dest$(dirname "$f")" && cp -P -p -- "$f" "$dest$f"; } 2>&1 ) \
      || fail "file:$f" "cannot back it up into $dest, so nothing was replaced: $err"
  done
}
# need_space PATH...: room in the backup directory for copies of PATH... (and a margin),
# checked before anything is written.
need_space() {
  need=$(du -ck -- "$@" 2>/dev/null | tail -n 1 | cut -f 1)
  free=$(df -Pk "$SD/backup" 2>/dev/null | awk 'NR == 2 { print $4 }')
  if [ $((${need:-0} + 64)) -gt "${free:-0}" ]; then
    fail state "no space left on $(df -P "$SD/backup" 2>/dev/null | awk 'NR == 2 { print $6 }') for the backups of this run (${need:-?} KB needed, ${free:-?} KB free), so nothing was changed: make room, or keep fewer backups (keep_backups in pipeline.toml)"
  fi
}
# prune_backups N: keeps the backups of the newest N runs.
prune_backups() {
  ls -1t "$SD/backup" 2>/dev/null | tail -n +$(($1 + 1)) | while IFS= read -r old; do rm -rf -- "${SD:?}/backup/$old"; done
}
# pkg_install NAME APT_SPEC DNF_SPEC SECONDS (the package pinned the way each manager writes it).
# Package scripts may start daemons: no lock fd for them. `--` ends the options: a name is a
# name (the compiler refuses names starting with `-` anyway).
pkg_install() {
  if command -v apt-get >/dev/null 2>&1; then bounded "$4" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades -o Dpkg::Options::=--force-confold -- "$2" >"$SD/out" 2>&1 </dev/null 9>&-
  elif command -v dnf >/dev/null 2>&1; then bounded "$4" dnf install -y --allowerasing -- "$3" >"$SD/out" 2>&1 </dev/null 9>&-
  else echo "no apt-get or dnf on this host to install $1" >"$SD/out"; return 1; fi
}
pkg_remove() {
  if command -v apt-get >/dev/null 2>&1; then bounded "$2" env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q -- "$1" >"$SD/out" 2>&1 </dev/null 9>&-
  elif command -v dnf >/dev/null 2>&1; then bounded "$2" dnf remove -y -- "$1" >"$SD/out" 2>&1 </dev/null 9>&-
  else echo "no apt-get or dnf on this host" >"$SD/out"; return 1; fi
}
