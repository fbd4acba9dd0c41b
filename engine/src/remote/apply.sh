# shellcheck shell=sh
# The fixed part of every apply script, after the generated header (`set -u`, `umask 022`,
# `SD=<state directory>`, `RUN=<run id>`). Takes the host's lock and defines the functions the
# generated steps call. Output is one record per line, parsed by apply.rs:
# `OK|FAIL|VALIDATE|LOCKED|DONE <tab> resource <tab> detail`, newlines in the detail sent as \036.
: "${SD:?}" "${RUN:?}"
export LC_ALL=C
say() { printf '%s\t%s\t%s\n' "$1" "$2" "$3"; }
fail() { say FAIL "$1" "$2"; exit 1; }
fail_owner() { fail "$1" "cannot set owner/mode (does user $2 / group $3 exist?)"; }
tail_out() { tail -c 2000 "$SD/out" 2>/dev/null | tr '\n' '\036'; }
# SD_INIT chooses between a service's systemd and command forms in the commands below.
# shellcheck disable=SC2034
if [ -d /run/systemd/system ]; then SD_INIT=systemd; else SD_INIT=other; fi
mkdir -p "$SD/backup" && chmod 0700 "$SD" || fail state "cannot create $SD"
exec 9>>"$SD/lock" || fail state "cannot open $SD/lock"
if ! flock -n 9; then say LOCKED - "$(cat "$SD/lock.owner" 2>/dev/null || echo unknown)"; exit 75; fi
# expect_state RUN: the host's applied record is still the one of run RUN (`-`: none), as the
# plan saw it; otherwise the run stops before changing anything.
expect_state() {
  now=-
  if [ -r "$SD/applied.json" ]; then now=$(sed -n 's/.*"run_id":"\([^"]*\)".*/\1/p' "$SD/applied.json"); fi
  if [ "$now" != "$1" ]; then say STALE - "$(tr -d '\n' < "$SD/applied.json" 2>/dev/null)"; exit 76; fi
}
# fd 9 holds the lock: children must not inherit it, or a daemon started here would keep
# the host locked after the run. A command of the composition reads nothing (the rest of this
# script may be on stdin) and writes its output to $SD/out for tail_out.
run_cmd() { ( set +u; eval "$1" ) >"$SD/out" 2>&1 </dev/null 9>&-; }
# wait_status STATUS_COMMAND: up to 10 s for a started service to say it runs.
wait_status() { i=0; while [ $i -lt 50 ]; do if ( set +u; eval "$1" ) >/dev/null 2>&1 </dev/null 9>&-; then return 0; fi; sleep 0.2; i=$((i+1)); done; return 1; }
# grep exits 1 when nothing is left, 2 on a write error: only a complete file replaces the old.
done_restart() {
  [ -f "$SD/pending-restarts" ] || return 0
  grep -vxF -- "$1" "$SD/pending-restarts" > "$SD/pending-restarts.tmp"
  [ $? -le 1 ] && mv -f "$SD/pending-restarts.tmp" "$SD/pending-restarts" || fail state "cannot update $SD/pending-restarts (disk full?)"
}
backup() { if [ -e "$1" ]; then mkdir -p "$SD/backup/$RUN$(dirname "$1")" && cp -p "$1" "$SD/backup/$RUN$1"; fi; }
# pkg_install NAME APT_SPEC DNF_SPEC (the package pinned the way each manager writes it).
# Package scripts may start daemons: no lock fd for them. `--` ends the options: a name is a
# name (the compiler refuses names starting with `-` anyway).
pkg_install() {
  if command -v apt-get >/dev/null 2>&1; then DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades -o Dpkg::Options::=--force-confold -- "$2" >"$SD/out" 2>&1 </dev/null 9>&-
  elif command -v dnf >/dev/null 2>&1; then dnf install -y --allowerasing -- "$3" >"$SD/out" 2>&1 </dev/null 9>&-
  else echo "no apt-get or dnf on this host to install $1" >"$SD/out"; return 1; fi
}
pkg_remove() {
  if command -v apt-get >/dev/null 2>&1; then DEBIAN_FRONTEND=noninteractive apt-get remove -y -q -- "$1" >"$SD/out" 2>&1 </dev/null 9>&-
  elif command -v dnf >/dev/null 2>&1; then dnf remove -y -- "$1" >"$SD/out" 2>&1 </dev/null 9>&-
  else echo "no apt-get or dnf on this host" >"$SD/out"; return 1; fi
}
