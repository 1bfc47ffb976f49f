#!/usr/bin/env bash
# Runs Molecule scenarios `molecule test -s <s>`, MOLECULE_JOBS at a time (default 2): each scenario has its own
# containers (sesdf-<scenario>-*) and podman network, so scenarios are independent and the lab's waits (systemd
# boots, the PEC double's start) overlap. The longest scenarios start first. Each log goes to
# build/molecule/<scenario>.log; a failing scenario's log tail is printed, no new scenario starts after a failure,
# and the exit status is 1 when any failed.
# Usage: tests/molecule/run.sh scenario...
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
jobs_max=${MOLECULE_JOBS:-2}
logs=build/molecule
mkdir -p "$logs"
# Longest first (minutes measured alone on 2 cores), the rest in the order given.
order=(regime upgrade migrate hardening runner backup_schedule weekly decommission pec_strict backup pec_info)
todo=()
for s in "${order[@]}"; do [[ " $* " == *" $s "* ]] && todo+=("$s"); done
for s in "$@"; do [[ " ${todo[*]} " == *" $s "* ]] || todo+=("$s"); done

declare -A pid_of
failed=()
run_one() {
  local s=$1 t0=$SECONDS
  if molecule test -s "$s" >"$logs/$s.log" 2>&1; then
    echo "=== molecule $s: passed in $((SECONDS - t0)) s"
  else
    echo "=== molecule $s: FAILED after $((SECONDS - t0)) s (log: $logs/$s.log); last lines:"
    tail -n 120 "$logs/$s.log" | sed "s/^/[$s] /"
    return 1
  fi
}

running=0
for s in "${todo[@]}"; do
  if ((${#failed[@]})); then break; fi
  while ((running >= jobs_max)); do
    wait -n -p done_pid; rc=$?
    running=$((running - 1))
    ((rc == 0)) || failed+=("${pid_of[$done_pid]}")
  done
  ((${#failed[@]})) && break
  echo "=== molecule $s: started"
  run_one "$s" &
  pid_of[$!]=$s
  running=$((running + 1))
done
while ((running > 0)); do
  wait -n -p done_pid; rc=$?
  running=$((running - 1))
  ((rc == 0)) || failed+=("${pid_of[$done_pid]}")
done
if ((${#failed[@]})); then
  echo "molecule: FAILED: ${failed[*]}"
  exit 1
fi
echo "molecule: all ${#todo[@]} scenario(s) passed"
