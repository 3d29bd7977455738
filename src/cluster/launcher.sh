#!/bin/bash
# One node's boot loop, detached from the CLI that started it.
# usage: OTC_CGROUP_DIRS="HIERARCHY…" launcher.sh NODE_DIR CGROUP -- systemd-nspawn args…
# OTC_CGROUP_DIRS: the host's cgroup hierarchies (src/cluster/cgroups.ts: /sys/fs/cgroup on a
# unified host; …/systemd and …/unified on a hybrid one).
# Exit code 133 means the node ran `systemctl reboot`: boot it again. Anything else ends the loop.
set -u
dir=$1 cg=$2
shift 3
: "${OTC_CGROUP_DIRS:?launcher: OTC_CGROUP_DIRS is not set}"
echo $$ > "$dir/launcher.pid"
# Each node's launcher gets its own cgroup; otherwise all nodes share nspawn's "payload" cgroup
# and their systemds fight over it.
for h in $OTC_CGROUP_DIRS; do
  mkdir -p "$h/$cg" && echo $$ > "$h/$cg/cgroup.procs" || {
    echo "launcher: cannot enter cgroup $h/$cg" >&2; rm -f "$dir/launcher.pid"; exit 1; }
done
stopping=0 child=
trap 'stopping=1; [ -n "$child" ] && kill -TERM "$child"' TERM INT
while :; do
  # A previous boot can leave empty payload/supervisor cgroups behind in the unified hierarchy;
  # nspawn then skips creating them in the systemd one and fails to attach ("No such file or
  # directory"). Remove the empty ones (rmdir refuses any that still has processes).
  for h in $OTC_CGROUP_DIRS; do
    find "$h/$cg" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  echo "launcher: booting at $(date -Is)"
  SYSTEMD_NSPAWN_API_VFS_WRITABLE=network systemd-nspawn "$@" </dev/null &
  child=$!
  echo "$child" > "$dir/nspawn.pid"
  # `wait` returns early when a trapped signal arrives; keep waiting for the real exit status.
  while wait "$child"; rc=$?; kill -0 "$child" 2>/dev/null; do :; done
  rm -f "$dir/nspawn.pid"
  echo "launcher: nspawn exited $rc at $(date -Is)"
  [ "$rc" -eq 133 ] && [ "$stopping" -eq 0 ] || break
done
rm -f "$dir/launcher.pid"
