# shellcheck shell=sh
# The fixed part of the probe, after the generated header (`set -u`, `SD=<state directory>`).
# Prints one tab-separated record per line (parsed by probe.rs): the host's facts, its applied
# record and owed restarts here; the generated lines after it call the probe_* functions for
# the catalog's paths, packages, services and execs, and the script ends with `END`.
: "${SD:?}"
export LC_ALL=C
fact() { printf 'FACT\t%s\t%s\n' "$1" "$2"; }
# Facts from /proc where the shell can read them itself: a probe launches few programs.
if IFS= read -r h < /proc/sys/kernel/hostname 2>/dev/null; then fact hostname "$h"; else fact hostname "$(hostname)"; fi
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
if IFS= read -r k < /proc/sys/kernel/osrelease 2>/dev/null; then fact kernel "$k"; else fact kernel "$(uname -r)"; fi
fact cpus "$(nproc 2>/dev/null || echo 1)"
mem=
[ -r /proc/meminfo ] && while read -r key kb _; do if [ "$key" = MemTotal: ]; then mem=$((kb / 1024)); break; fi; done 2>/dev/null </proc/meminfo
fact memory_mb "$mem"
if [ -r "$SD/applied.json" ]; then printf 'APPLIED\t%s\n' "$(tr -d '\n' < "$SD/applied.json")"; fi
if [ -r "$SD/pending-restarts" ]; then sort -u "$SD/pending-restarts" | while IFS= read -r l; do [ -n "$l" ] && printf 'PENDING\t%s\n' "$l"; done; fi
# A command of the composition (status, unless) only answers yes or no: no output, no input,
# within 30 s; fed to its shell on stdin, so it is no process's argument.
quiet() { printf '%s' "$1" | timeout -k 5 30 sh -c 'eval "$(cat)" </dev/null' >/dev/null 2>&1; }
# probe_paths PATH...: what each path is (by its position in the list, so any byte in a path
# is harmless), and the sha256 of regular files. The shell's own tests tell the kinds apart,
# one stat reports the mode, owner and group of every file and directory, one sha256sum hashes
# the files: a probe launches a few programs, not one per path. sha256sum's own line is passed
# on whole: it escapes names holding a backslash or a newline, and probe.rs reads it back.
# A symlink at a path in FOLLOW (newline-separated) is reported with what it resolves to, and
# the path as what is there; any other symlink as one.
FOLLOW=${FOLLOW:-}
NL='
'
follows() { case "
$FOLLOW
" in *"
$1
"*) return 0 ;; esac; return 1; }
probe_paths() {
  kinds="" files="" want=0 i=0
  for p in "$@"; do
    k=-
    through=
    if [ -L "$p" ] && follows "$p"; then printf 'LINK\t%s\t%s\n' "$i" "$(readlink -f -- "$p")"; through=1; fi
    if [ -L "$p" ] && [ -z "$through" ]; then printf 'PATH\t%s\tother\tsymlink to %s\n' "$i" "$(readlink -- "$p" | tr -d '\n' | tr '\t' ' ')"
    elif [ -f "$p" ]; then k=f; files=1; want=$((want + 1))
    elif [ -d "$p" ]; then k=d; want=$((want + 1))
    elif [ -e "$p" ]; then printf 'PATH\t%s\tother\t%s\n' "$i" "$(stat -L -c '%F' "$p")"
    else printf 'PATH\t%s\tmissing\n' "$i"; fi
    kinds=$kinds$k
    i=$((i + 1))
  done
  if [ "$want" -gt 0 ]; then
    ks=$kinds
    stats=$(for p in "$@"; do
      k=${ks%"${ks#?}"}; ks=${ks#?}
      case $k in f|d) printf '%s\0' "$p" ;; esac
    done | xargs -0 stat -L -c '%a	%U	%G' -- 2>/dev/null)
    # A path gone between its test and the stat leaves its line out: then a stat per path.
    n=0
    if [ -n "$stats" ]; then rest=$stats$NL; while [ -n "$rest" ]; do n=$((n + 1)); rest=${rest#*"$NL"}; done; fi
    ks=$kinds i=0 rest=$stats$NL
    for p in "$@"; do
      k=${ks%"${ks#?}"}; ks=${ks#?}
      case $k in
        f|d)
          if [ "$n" = "$want" ]; then line=${rest%%"$NL"*}; rest=${rest#*"$NL"}
          else line=$(stat -L -c '%a	%U	%G' -- "$p" 2>/dev/null) || line=; fi
          if [ -z "$line" ]; then printf 'PATH\t%s\tmissing\n' "$i"
          elif [ "$k" = f ]; then printf 'PATH\t%s\tfile\t%s\n' "$i" "$line"
          else printf 'PATH\t%s\tdir\t%s\n' "$i" "$line"; fi
          ;;
      esac
      i=$((i + 1))
    done
  fi
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
