# shellcheck shell=sh
# The fixed part of the probe, after the generated header (`set -u`, `SD=<state directory>`).
# Prints one tab-separated record per line (parsed by probe.rs): the host's facts, its applied
# record and owed restarts here; the generated lines after it call the probe_* functions for
# the catalog's paths, packages, services and execs, and the script ends with `END`.
: "${SD:?}"
export LC_ALL=C
fact() { printf 'FACT\t%s\t%s\n' "$1" "$2"; }
fact hostname "$(hostname)"
if [ -r /etc/os-release ]; then . /etc/os-release; fi
fact os_id "${ID:-unknown}"
fact os_version "${VERSION_ID:-unknown}"
case " ${ID:-} ${ID_LIKE:-} " in
  *" debian "*|*" ubuntu "*) fact os_family debian ;;
  *" rhel "*|*" fedora "*|*" centos "*) fact os_family redhat ;;
  *) fact os_family unknown ;;
esac
if [ -d /run/systemd/system ]; then SD_INIT=systemd; else SD_INIT=other; fi
export SD_INIT
fact init "$SD_INIT"
fact kernel "$(uname -r)"
fact cpus "$(nproc 2>/dev/null || echo 1)"
fact memory_mb "$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo 2>/dev/null)"
if [ -r "$SD/applied.json" ]; then printf 'APPLIED\t%s\n' "$(tr -d '\n' < "$SD/applied.json")"; fi
if [ -r "$SD/pending-restarts" ]; then sort -u "$SD/pending-restarts" | while IFS= read -r l; do [ -n "$l" ] && printf 'PENDING\t%s\n' "$l"; done; fi
# A command of the composition (status, unless) only answers yes or no: no output, no input,
# within 30 s; fed to its shell on stdin, so it is no process's argument.
quiet() { printf '%s' "$1" | timeout -k 5 30 sh -c 'eval "$(cat)" </dev/null' >/dev/null 2>&1; }
# probe_paths PATH...: what each path is (by its position in the list, so any byte in a path
# is harmless), and the sha256 of regular files. sha256sum's own line is passed on whole: it
# escapes names holding a backslash or a newline, and probe.rs reads it back.
# A symlink at a path in FOLLOW (newline-separated) is reported with what it resolves to, and
# the path as what is there; any other symlink as one.
FOLLOW=${FOLLOW:-}
follows() { case "
$FOLLOW
" in *"
$1
"*) return 0 ;; esac; return 1; }
probe_paths() {
  files=""
  i=0
  for p in "$@"; do
    through=
    if [ -L "$p" ] && follows "$p"; then printf 'LINK\t%s\t%s\n' "$i" "$(readlink -f -- "$p")"; through=1; fi
    if [ -L "$p" ] && [ -z "$through" ]; then printf 'PATH\t%s\tother\tsymlink to %s\n' "$i" "$(readlink -- "$p" | tr -d '\n' | tr '\t' ' ')"
    elif [ -f "$p" ]; then printf 'PATH\t%s\tfile\t%s\n' "$i" "$(stat -L -c '%a	%U	%G' "$p")"; files=1
    elif [ -d "$p" ]; then printf 'PATH\t%s\tdir\t%s\n' "$i" "$(stat -L -c '%a	%U	%G' "$p")"
    elif [ -e "$p" ]; then printf 'PATH\t%s\tother\t%s\n' "$i" "$(stat -L -c '%F' "$p")"
    else printf 'PATH\t%s\tmissing\n' "$i"; fi
    i=$((i+1))
  done
  if [ -n "$files" ]; then
    for p in "$@"; do [ -f "$p" ] && { [ ! -L "$p" ] || follows "$p"; } && printf '%s\0' "$p"; done | xargs -0 sha256sum -- | while IFS= read -r line; do printf 'HASH\t%s\n' "$line"; done
  fi
}
# probe_packages NAME...: installed version or absent.
probe_packages() {
  if command -v dpkg-query >/dev/null 2>&1; then
    for p in "$@"; do
      v=$(dpkg-query -W -f='${db:Status-Abbrev}|${Version}' -- "$p" 2>/dev/null)
      case "$v" in ii*) printf 'PKG\t%s\tinstalled\t%s\n' "$p" "${v#*|}" ;; *) printf 'PKG\t%s\tabsent\n' "$p" ;; esac
    done
  elif command -v rpm >/dev/null 2>&1; then
    for p in "$@"; do
      if v=$(rpm -q --qf '%{VERSION}-%{RELEASE}' -- "$p" 2>/dev/null); then printf 'PKG\t%s\tinstalled\t%s\n' "$p" "$v"; else printf 'PKG\t%s\tabsent\n' "$p"; fi
    done
  else
    for p in "$@"; do printf 'PKG\t%s\tabsent\n' "$p"; done
  fi
}
# probe_service NAME STATUS_COMMAND
probe_service() {
  if quiet "$2"; then printf 'SVC\t%s\trunning\n' "$1"; else printf 'SVC\t%s\tstopped\n' "$1"; fi
}
# probe_exec NAME CREATES UNLESS (an empty guard is no guard): does the exec need to run?
probe_exec() {
  if [ -n "$2" ] && [ -e "$2" ]; then printf 'EXEC\t%s\tsatisfied\n' "$1"
  elif [ -n "$3" ] && quiet "$3"; then printf 'EXEC\t%s\tsatisfied\n' "$1"
  else printf 'EXEC\t%s\tneeded\n' "$1"; fi
}
