#!/usr/bin/env bash
# Fleet benchmark (SPEC "Performance targets"): stackdeploy against the bare SSH floor and
# against ansible-core, side by side in one run, on 2 x 50 local lab hosts.
#
#   bash benches/fleet.sh          # as root, Debian 12; about 20 minutes, nearly all ansible
#
# Then, unless FLEET_SCALE=0, the same script again with FLEET_HOSTS=200 FLEET_ANSIBLE=0:
# stackdeploy alone on 200 hosts with its default settings (no --forks), which must pass.
# FLEET_HOSTS=N (at most 254) and FLEET_ANSIBLE=0 also work on their own.
#
# Targets: a no-change plan/apply of 50 hosts within 2x the floor (one OpenSSH connection + one
# command per host, all in parallel) and at least 50x faster than ansible's no-change run; a
# first apply at least 30x faster than ansible's first run. The table is printed and written to
# target/bench/fleet.txt; run logs are kept in target/bench/fleet-logs/.
#
# What is compared: benches/fleet/gen.py writes one composition with two environments of the
# same 50 host names, `sd` (127.90.0.1-50) and `ans` (127.91.0.1-50), 30 templated files per
# host in 10 directories, plus an ansible project for the `ans` hosts whose variables are the
# same hiera values resolved per host. Both tools render the same template files
# (benches/fleet/templates). FLEET_FILES=N keeps only the first N files.
#
# Settings, the same for both tools where they have one: 50 hosts worked on at once
# (stackdeploy --forks 50, ansible forks=50); ansible with pipelining, ControlPersist 60 s (its
# default ssh_args) and strict host key checking against the lab's known_hosts; facts gathered by
# both (stackdeploy's probe always gathers a few; ansible gathers its minimal subset, which holds
# the hostname, distribution and kernel the templates use). Ansible's interpreter is set
# (/usr/bin/python3) so no discovery round trip is counted against it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/target/bench
# FLEET_BIN=PATH runs another build (an older commit's, to compare in one machine's conditions).
BIN=${FLEET_BIN:-$ROOT/target/release/stackdeploy}
VENV=$OUT/venv
HOSTS=${FLEET_HOSTS:-50}
ANSIBLE=${FLEET_ANSIBLE:-1}
export FLEET_HOSTS=$HOSTS
# With ansible, both tools work on every host at once; alone, stackdeploy runs as it ships.
if [ "$ANSIBLE" = 1 ]; then FORKS=(--forks "$HOSTS"); else FORKS=(); fi
SD_NET=127.90.0   # must match benches/fleet/gen.py
ANS_NET=127.91.0

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'fleet.sh: %s\n' "$*" >&2; exit 1; }

# --- 1. the release binary and ansible-core ----------------------------------------------------

[ "$(id -u)" = 0 ] || die "the lab needs root"
command -v strace >/dev/null || die "strace counts the programs an apply launches: apt-get install strace"
if [ -z "${FLEET_BIN:-}" ]; then
  log "cargo build --release"
  (cd "$ROOT" && cargo build --release --quiet)
fi
mkdir -p "$OUT"
if [ "$ANSIBLE" = 1 ] && [ ! -x "$VENV/bin/ansible-playbook" ]; then
  log "installing ansible-core into $VENV"
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    apt-get update -q && apt-get install -y -q python3-venv
  fi
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q ansible-core
fi

# --- 2. the composition, the ansible project, the labs -----------------------------------------

WORK=$(mktemp -d /tmp/stackdeploy-fleet.XXXXXX)
REPO=$WORK/repo
ANS=$WORK/ansible
LOGS=$OUT/fleet-logs-$HOSTS
LABS_UP=()

# cleanup_labs: stops this run's lab hosts (and ansible's ssh masters), once.
cleanup_labs() {
  # ansible's ControlPersist masters would otherwise outlive the run by up to 60 s.
  for sock in "$ANS"/cp/*; do
    [ -S "$sock" ] && ssh -F /dev/null -o ControlPath="$sock" -O exit lab >/dev/null 2>&1
  done
  for env in "${LABS_UP[@]}"; do
    log "lab down --env $env"
    (cd "$REPO" && "$BIN" lab down --env "$env" >/dev/null) || echo "lab down --env $env failed" >&2
  done
  LABS_UP=()
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  cleanup_labs
  rm -rf "$WORK"
  if ss -ltn | grep -E "($SD_NET|$ANS_NET)\.[0-9]+:" >&2; then
    echo "fleet.sh: the sockets above are still listening after lab down" >&2
    rc=1
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "generating the composition in $REPO and the ansible project in $ANS"
python3 "$ROOT/benches/fleet/gen.py" "$REPO" "$ANS"
# stackdeploy reads compositions from commits.
git -C "$REPO" init -q
git -C "$REPO" add -A
git -C "$REPO" -c user.name=fleet-bench -c user.email=fleet-bench@invalid commit -q -m "fleet benchmark"
rm -rf "$LOGS" && mkdir -p "$LOGS"

sd() { (cd "$REPO" && "$BIN" "$@"); }
ENVS=(sd)
[ "$ANSIBLE" = 1 ] && ENVS+=(ans)
for env in "${ENVS[@]}"; do
  log "lab up --env $env ($HOSTS hosts)"
  LABS_UP+=("$env")
  sd lab up --env "$env" >"$LOGS/lab-up-$env.log" 2>&1 || { cat "$LOGS/lab-up-$env.log" >&2; die "lab up --env $env failed"; }
done
LAB_SD=$REPO/.stackdeploy/lab/sd
LAB_ANS=$REPO/.stackdeploy/lab/ans

# --- 3. measurements -------------------------------------------------------------------------

declare -A SECS CPU
# Server CPU: a lab host's `sshd -D` collects the CPU time of the sessions it has reaped
# (cutime + cstime in /proc/PID/stat), so its growth across a run is what the run cost the
# hosts (their sshd sessions, shells and every program the scripts launch).
server_cpu() {
  local ticks=0 p
  for p in $(grep -ho '"pid": *[0-9]*' "$LAB_SD"/hosts/*/host.json | grep -o '[0-9]*$'); do
    ticks=$((ticks + $(awk '{ print $16 + $17 }' "/proc/$p/stat")))
  done
  echo "$ticks"
}
# timed NAME CMD...: runs CMD with its output in $LOGS/NAME.log, records its wall time in
# SECS[NAME], the hosts' CPU seconds in CPU[NAME] and its exit code in RC.
timed() {
  local name=$1 start end cpu
  shift
  cpu=$(server_cpu)
  start=$(date +%s.%N)
  set +e
  "$@" >"$LOGS/$name.log" 2>&1
  RC=$?
  set -e
  end=$(date +%s.%N)
  sleep 0.5  # the last sessions' sshd processes are reaped
  CPU[$name]=$(awk -v a="$cpu" -v b="$(server_cpu)" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", (b - a) / hz }')
  SECS[$name]=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }')
  log "$name: ${SECS[$name]} s, hosts' CPU ${CPU[$name]} s (exit $RC)"
}
expect() {  # expect NAME CODE TEXT: the run exited CODE and its log holds TEXT
  [ "$RC" = "$2" ] && grep -qF -- "$3" "$LOGS/$1.log" \
    || { tail -n 30 "$LOGS/$1.log" >&2; die "$1: expected exit $2 and \"$3\" (got exit $RC; log in $LOGS/$1.log)"; }
}

SSH_LAB=(ssh -F /dev/null -i "$LAB_SD/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=yes
  -o UserKnownHostsFile="$LAB_SD/known_hosts" -o GlobalKnownHostsFile=/dev/null
  -o ControlMaster=no -p 2222)

# The floor: what any tool needs at least, one connection and one command per host, all at once.
floor() {
  local pids=() i failed=0
  for i in $(seq 1 "$HOSTS"); do
    "${SSH_LAB[@]}" "root@$SD_NET.$i" true &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || failed=1; done
  return "$failed"
}
# Median of three: it is the denominator of the 2x target, and one run can catch a stray spike.
for n in 1 2 3; do
  timed "floor-$n" floor
  [ "$RC" = 0 ] || { cat "$LOGS/floor-$n.log" >&2; die "the floor's ssh connections failed"; }
done
SECS[floor]=$(printf '%s\n' "${SECS[floor-1]}" "${SECS[floor-2]}" "${SECS[floor-3]}" | sort -n | sed -n 2p)
CPU[floor]=$(printf '%s\n' "${CPU[floor-1]}" "${CPU[floor-2]}" "${CPU[floor-3]}" | sort -n | sed -n 2p)

timed sd-first sd apply --env sd --yes "${FORKS[@]}"
expect sd-first 0 "Apply: $HOSTS changed, 0 unchanged, 0 failed"
timed sd-plan sd plan --env sd "${FORKS[@]}"
expect sd-plan 0 "Plan: 0 host(s) to change, $HOSTS unchanged"
timed sd-noop sd apply --env sd --yes "${FORKS[@]}"
expect sd-noop 0 "Apply: 0 changed, $HOSTS unchanged, 0 failed"

# The same no-change apply as two shards at once (two CI jobs on this one machine): what
# sharding costs or saves when the shards share the machine. On agents of their own each
# shard would have its cores.
sharded() {
  local k pids=() failed=0
  for k in 1 2; do sd apply --env sd --yes --shard "$k/2" "${FORKS[@]}" >"$LOGS/sd-sharded-$k.log" 2>&1 & pids+=($!); done
  for k in "${pids[@]}"; do wait "$k" || failed=1; done
  return "$failed"
}
timed sd-noop-sharded sharded
[ "$RC" = 0 ] || die "the sharded no-change apply failed (logs in $LOGS/sd-sharded-*.log)"

# Programs one host launches for a first apply, counted by strace on its sshd: node01's files
# and record are removed, and it is applied again on its own (so tracing slows no timed run).
PER_HOST=$(grep -c '^\[\[file\]\]' "$REPO/profiles/bench/profile.toml")
"${SSH_LAB[@]}" "root@$SD_NET.1" 'rm -rf /etc/bench /var/lib/stackdeploy'
NODE1_PID=$(grep -o '"pid": *[0-9]*' "$LAB_SD/hosts/node01/host.json" | grep -o '[0-9]*$')
strace -f -qq -e trace=execve -o "$LOGS/launches.strace" -p "$NODE1_PID" &
STRACE=$!
sleep 1
sd apply --env sd --limit node01 --yes >"$LOGS/launches.log" 2>&1 || die "the traced apply of node01 failed (log in $LOGS/launches.log)"
kill -INT "$STRACE"; wait "$STRACE" || true
LAUNCHES=$(grep -cE 'execve(\(| resumed).*= 0$' "$LOGS/launches.strace" || true)

if [ "$ANSIBLE" = 1 ]; then
  playbook() { ANSIBLE_CONFIG=$ANS/ansible.cfg "$VENV/bin/ansible-playbook" "$ANS/playbook.yml"; }
  # Recap lines of hosts that ended with nothing unreachable or failed (and, given CHANGED, exactly
  # that many changes).
  recap_ok() {
    grep -cE "^node[0-9]+ +: ok=[0-9]+ +changed=${2:-[0-9]+} +unreachable=0 +failed=0 " "$LOGS/$1.log" || true
  }
  log "ansible-playbook, first run (several minutes)"
  timed ans-first playbook
  [ "$RC" = 0 ] && [ "$(recap_ok ans-first)" = "$HOSTS" ] \
    || { tail -n 60 "$LOGS/ans-first.log" >&2; die "ansible's first run failed (log in $LOGS/ans-first.log)"; }
  log "ansible-playbook, no-change run (several minutes)"
  timed ans-noop playbook
  [ "$RC" = 0 ] && [ "$(recap_ok ans-noop 0)" = "$HOSTS" ] \
    || { tail -n 60 "$LOGS/ans-noop.log" >&2; die "ansible's second run changed something or failed (log in $LOGS/ans-noop.log)"; }

  # --- 4. same content from both tools -----------------------------------------------------------

  # Per file: path, mode and owner, the sha256 of its content with the ans addresses mapped to
  # the sd ones (the only data that differs between the two environments; host names are the
  # same), and the sha256 of the content as it is.
  LIST='cd / && find /etc/bench -type f | sort | while read -r f; do
    printf "%s %s %s %s\n" "$f" "$(stat -c %a:%U:%G "$f")" \
      "$(sed "s/127\.91\.0\./127.90.0./g" "$f" | sha256sum | cut -c1-64)" "$(sha256sum < "$f" | cut -c1-64)"
  done'
  log "comparing what both tools wrote on all $HOSTS host pairs"
  files=0 raw_same=0
  for i in $(seq 1 "$HOSTS"); do
    a=$("${SSH_LAB[@]}" "root@$SD_NET.$i" "$LIST")
    b=$(ssh -F /dev/null -i "$LAB_ANS/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=yes \
      -o UserKnownHostsFile="$LAB_ANS/known_hosts" -o GlobalKnownHostsFile=/dev/null \
      -o ControlMaster=no -p 2222 "root@$ANS_NET.$i" "$LIST")
    if [ "$(cut -d' ' -f1-3 <<<"$a")" != "$(cut -d' ' -f1-3 <<<"$b")" ]; then
      diff <(echo "$a") <(echo "$b") >&2
      die "node$i: files differ between $SD_NET.$i (stackdeploy) and $ANS_NET.$i (ansible)"
    fi
    [ "$(wc -l <<<"$a")" = "$PER_HOST" ] || die "node$i: $(wc -l <<<"$a") files under /etc/bench, expected $PER_HOST"
    files=$((files + PER_HOST))
    raw_same=$((raw_same + $(paste -d' ' <(cut -d' ' -f4 <<<"$a") <(cut -d' ' -f4 <<<"$b") | awk '$1 == $2' | wc -l)))
  done

fi

# --- 5. the table ----------------------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
pass() { if awk "BEGIN { exit !($1) }"; then echo pass; else echo FAIL; fi; }
per_host() { awk -v a="$1" -v n="$HOSTS" 'BEGIN { printf "%.3f", a / n }'; }
r_first=$(ratio "${SECS[sd-first]}" "${SECS[floor]}")
r_plan=$(ratio "${SECS[sd-plan]}" "${SECS[floor]}")
r_noop=$(ratio "${SECS[sd-noop]}" "${SECS[floor]}")
r_cpu_plan=$(ratio "${CPU[sd-plan]}" "${CPU[floor]}")
r_cpu_first=$(ratio "${CPU[sd-first]}" "${CPU[floor]}")
per_file=$(awk -v l="$LAUNCHES" -v f="$PER_HOST" 'BEGIN { printf "%.1f", l / f }')
row() { printf '%-44s %9.2f %9s\n' "$1" "$2" "$(per_host "$3")"; }
{
  echo "fleet benchmark, $(date -u +%Y-%m-%dT%H:%MZ), stackdeploy ${FLEET_BIN:-$(git -C "$ROOT" rev-parse --short HEAD)}"
  echo "$HOSTS lab hosts per tool, $PER_HOST templated files per host, $(nproc) CPUs"
  if [ "$ANSIBLE" = 1 ]; then
    echo "$("$VENV/bin/ansible" --version | head -1), $(ssh -V 2>&1 | cut -d, -f1)"
    echo "forks $HOSTS (both); ansible: pipelining, ControlPersist 60s, facts gathered (min subset)"
  else
    echo "stackdeploy alone, default settings (no --forks), $(ssh -V 2>&1 | cut -d, -f1)"
  fi
  echo
  printf '%-44s %9s %9s\n' "run" "wall s" "host CPU s"
  printf '%-44s %9.2f %9s  (median of %.2f, %.2f, %.2f)\n' "floor: ssh + true, $HOSTS hosts in parallel" \
    "${SECS[floor]}" "$(per_host "${CPU[floor]}")" "${SECS[floor-1]}" "${SECS[floor-2]}" "${SECS[floor-3]}"
  row "stackdeploy first apply" "${SECS[sd-first]}" "${CPU[sd-first]}"
  row "stackdeploy no-change plan" "${SECS[sd-plan]}" "${CPU[sd-plan]}"
  row "stackdeploy no-change apply" "${SECS[sd-noop]}" "${CPU[sd-noop]}"
  row "stackdeploy no-change apply, 2 shards at once" "${SECS[sd-noop-sharded]}" "${CPU[sd-noop-sharded]}"
  if [ "$ANSIBLE" = 1 ]; then
    printf '%-44s %9.2f\n' "ansible-core first run" "${SECS[ans-first]}"
    printf '%-44s %9.2f\n' "ansible-core no-change run" "${SECS[ans-noop]}"
  fi
  echo "(host CPU: per host, the CPU time its sshd sessions and everything they ran took)"
  echo
  printf '%-44s %9s %8s  %s\n' "ratio" "measured" "target" ""
  printf '%-44s %9s %8s  %s\n' "first apply / floor" "$r_first" "<= 2" "$(pass "$r_first <= 2")"
  printf '%-44s %9s %8s  %s\n' "no-change plan / floor" "$r_plan" "<= 2" "$(pass "$r_plan <= 2")"
  printf '%-44s %9s %8s  %s\n' "no-change apply / floor" "$r_noop" "<= 2" "$(pass "$r_noop <= 2")"
  printf '%-44s %9s %8s  %s\n' "no-change plan host CPU / floor's" "$r_cpu_plan" "<= 2" "$(pass "$r_cpu_plan <= 2")"
  printf '%-44s %9s %8s  %s\n' "first apply host CPU / floor's" "$r_cpu_first" "" ""
  printf '%-44s %9s %8s  %s\n' "2 shards at once / unsharded, no-change apply" "$(ratio "${SECS[sd-noop-sharded]}" "${SECS[sd-noop]}")" "" "(one machine)"
  printf '%-44s %9s %8s  %s\n' "programs launched per file, first apply" "$per_file" "" "($LAUNCHES for $PER_HOST files on node01, sshd's own included)"
  if [ "$ANSIBLE" = 1 ]; then
    r_ans_noop=$(ratio "${SECS[ans-noop]}" "${SECS[sd-noop]}")
    r_ans_first=$(ratio "${SECS[ans-first]}" "${SECS[sd-first]}")
    printf '%-44s %9s %8s  %s\n' "ansible no-change / stackdeploy no-change" "$r_ans_noop" ">= 50" "$(pass "$r_ans_noop >= 50")"
    printf '%-44s %9s %8s  %s\n' "ansible first / stackdeploy first" "$r_ans_first" ">= 30" "$(pass "$r_ans_first >= 30")"
    echo
    echo "same files from both tools: all $files on $HOSTS host pairs (path, mode, owner, content;"
    echo "  $raw_same byte-identical, the others once the ans addresses are mapped to the sd ones)"
  fi
} | tee "$OUT/fleet-$HOSTS.txt"

# The scale run: 200 hosts, stackdeploy alone with its defaults (after this run's labs are down).
if [ "${FLEET_SCALE:-1}" = 1 ] && [ "$HOSTS" != 200 ]; then
  cleanup_labs
  FLEET_HOSTS=200 FLEET_ANSIBLE=0 FLEET_SCALE=0 bash "${BASH_SOURCE[0]}"
fi
