#!/usr/bin/env bash
# make demo: three lab UBS servers in two health regions, the PEC double installed with synthetic data,
# then playbooks/site.yml against inventories/lab, and the regional report it wrote.
# KEEP=1 leaves the containers running afterwards (remove them with: lab/demo.sh --destroy).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
export CONTAINERS_CONF="$here/containers.conf"
hosts=(sesdf-lab-ubs-norte-1 sesdf-lab-ubs-norte-2 sesdf-lab-ubs-sul-1)
inventory="$repo/inventories/lab/hosts.yml"
report_dir="$repo/build/demo/relatorios"

destroy() { for h in "${hosts[@]}"; do podman rm -f "$h" >/dev/null 2>&1 || true; done; }
if [[ "${1:-}" == "--destroy" ]]; then destroy; exit 0; fi

mkdir -p "$repo/build"
image=$(bash "$here/build-image.sh" --print-image)
podman image exists "$image" || bash "$here/build-image.sh"
for h in "${hosts[@]}"; do
  if [[ "$(podman inspect -f '{{.State.Running}}' "$h" 2>/dev/null)" != "true" ]]; then
    podman rm -f "$h" >/dev/null 2>&1 || true
    echo "[demo] starting $h"
    podman run -d --name "$h" --hostname "$h" --privileged --systemd=always "$image" /sbin/init >/dev/null
  fi
done
[[ "${KEEP:-0}" == "1" ]] || trap destroy EXIT

echo "[demo] installing the PEC double 4.2.8 and synthetic data on each UBS"
ansible-playbook -i "$inventory" "$repo/molecule/shared/prepare_ubs.yml" >"$repo/build/demo-prepare.log" 2>&1 \
  || { tail -40 "$repo/build/demo-prepare.log"; echo "[demo] preparation failed"; exit 1; }

echo "[demo] running playbooks/site.yml"
rm -rf "$report_dir"
ansible-playbook -i "$inventory" "$repo/playbooks/site.yml" -e "report_dir=$report_dir"

echo
echo "[demo] reports (open index.html in a browser):"
ls -1 "$report_dir"
