#!/usr/bin/env bash
# make bench-fleet: the daily backup check (AWX schedule "Checagem diária de backup", job template "sesdf.esus -
# relatório": playbooks/report.yml, extra vars {}) and the regime in check mode (site.yml --check: every UBS an
# inapt one, so its local-server regime) against N lab UBS reached over SSH, with Ansible's default settings
# (ansible-default.cfg) and the tuned ones (ansible-tuned.cfg) in the same run; then the local-server regime of an
# inapt UBS on one UBS (site.yml, job template "sesdf.esus - inventário e relatório"): a first run converges, the
# idempotent re-run is timed. Prints a table and a projection of a 200-UBS night. Not a test: it never fails on
# the figures (it fails when a playbook fails: the figures would mean nothing).
# Env: BENCH_FLEET_SIZES (default "1 5 10"), BENCH_FLEET_CONFIGS (default "default tuned free"; free = tuned with
# strategy free), BENCH_FLEET_JOBS (default "baseline health check": one ping per UBS, the least a job costs
# here; the daily check; the regime in check mode), BENCH_FLEET_REPEAT (default 3: each fleet run that many
# times, interleaved; the table gives the median), BENCH_FLEET_REGIME (default 1; 0 skips the regime),
# BENCH_FLEET_REGIME_CONFIGS (settings of the idempotent re-run, default "tuned"), BENCH_FLEET_PATIENTS
# (synthetic patients per UBS, default 200), BENCH_FLEET_UBS_TOTAL and BENCH_FLEET_WINDOW_H (the projection: default 200 UBS, 2 h), BENCH_KEEP=1 keeps the
# containers (sesdf-bench-fleet-ubs-NN). Work files (inventories, per-run json, logs): build/bench-fleet/.
# The link: every setting also runs over a link shaped like an inapt UBS's (settings "<name>-wan": each UBS reached
# through benchmarks/fleet/slowlink.py, BENCH_FLEET_WAN_KBIT default 4000 kbit/s and BENCH_FLEET_WAN_DELAY_MS default
# 50 ms each way, 100 ms round trip) beside the direct one; BENCH_FLEET_WAN_CONFIGS (default "tuned") are the fleet
# settings run over it, BENCH_FLEET_REGIME_CONFIGS gain their -wan twins; BENCH_FLEET_WAN=0 leaves it out.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$REPO/benchmarks/fleet
PREFIX=sesdf-bench-fleet-ubs
IMAGE=${LAB_IMAGE:-localhost/sesdf-esus-lab:latest}
read -r -a SIZES <<<"${BENCH_FLEET_SIZES:-1 5 10}"
read -r -a CONFIGS <<<"${BENCH_FLEET_CONFIGS:-default tuned free}"
read -r -a JOBS <<<"${BENCH_FLEET_JOBS:-baseline health check}"
for j in "${JOBS[@]}"; do
  [[ $j == baseline || $j == health || $j == check ]] \
    || { echo "BENCH_FLEET_JOBS: unknown job $j (baseline, health, check)" >&2; exit 2; }
done
REPEAT=${BENCH_FLEET_REPEAT:-3}
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_FLEET_REPEAT: a whole number >= 1, not $REPEAT" >&2; exit 2; }
REGIME=${BENCH_FLEET_REGIME:-1}
read -r -a REGIME_CONFIGS <<<"${BENCH_FLEET_REGIME_CONFIGS:-tuned}"
PATIENTS=${BENCH_FLEET_PATIENTS:-200}
WAN=${BENCH_FLEET_WAN:-1}
read -r -a WAN_CONFIGS <<<"${BENCH_FLEET_WAN_CONFIGS:-tuned}"
if [[ $WAN == 1 ]]; then
  for c in "${WAN_CONFIGS[@]}"; do CONFIGS+=("$c-wan"); done
  for c in "${REGIME_CONFIGS[@]}"; do REGIME_CONFIGS+=("$c-wan"); done
fi
WORK=$REPO/build/bench-fleet
export CONTAINERS_CONF=${CONTAINERS_CONF:-$REPO/lab/containers.conf}
export PATH=$REPO/.venv/bin:$PATH
export ANSIBLE_COLLECTIONS_PATH=${ANSIBLE_COLLECTIONS_PATH:-$REPO/build/collections}
export ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
# the settings under test come from the cfg files only
unset ANSIBLE_PIPELINING ANSIBLE_SSH_PIPELINING ANSIBLE_SSH_ARGS ANSIBLE_FORKS ANSIBLE_STRATEGY ANSIBLE_GATHERING \
  ANSIBLE_CACHE_PLUGIN ANSIBLE_SSH_CONTROL_PATH_DIR ANSIBLE_CONFIG ANSIBLE_STDOUT_CALLBACK

max=0; for n in "${SIZES[@]}"; do ((n > max)) && max=$n; done
((max >= 1)) || { echo "BENCH_FLEET_SIZES: at least one size >= 1" >&2; exit 2; }
hosts=(); for ((i = 1; i <= max; i++)); do hosts+=("$(printf '%s-%02d' "$PREFIX" "$i")"); done

cleanup() {
  [[ -n ${SLOWLINK_PID:-} ]] && kill "$SLOWLINK_PID" 2>/dev/null
  [[ ${BENCH_KEEP:-0} == 1 ]] && return 0
  for h in "${hosts[@]}"; do podman rm -f "$h" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
cleanup
rm -rf "$WORK"; mkdir -p "$WORK/runs" "$WORK/cp"
ssh-keygen -q -t ed25519 -N "" -C sesdf-bench-fleet -f "$WORK/controller_key"

echo "starting $max lab UBS container(s) ..." >&2
for h in "${hosts[@]}"; do
  podman run -d --name "$h" --hostname "$h" --privileged --systemd=always "$IMAGE" /sbin/init >/dev/null
done

# The UBS's own CPU: each container's cgroup counter (cgroup v1 cpuacct.usage in ns, or v2 cpu.stat usage_usec);
# a file that cannot be read gives no figure ("-"), never a guess.
cpu_files=()
for h in "${hosts[@]}"; do
  cg=$(podman inspect -f '{{.State.CgroupPath}}' "$h" 2>/dev/null || true)
  if [[ -n $cg && -r /sys/fs/cgroup/cpuacct$cg/cpuacct.usage ]]; then cpu_files+=("v1:/sys/fs/cgroup/cpuacct$cg/cpuacct.usage")
  elif [[ -n $cg && -r /sys/fs/cgroup$cg/cpu.stat ]]; then cpu_files+=("v2:/sys/fs/cgroup$cg/cpu.stat")
  else cpu_files+=("none:"); fi
done
ubs_cpu() {  # ubs_cpu <N>: CPU seconds used so far by the first N UBS containers, or "-"
  local n=$1 total=0 i kind file v
  for ((i = 0; i < n; i++)); do
    kind=${cpu_files[$i]%%:*} file=${cpu_files[$i]#*:}
    case $kind in
      v1) v=$(cat "$file") || { echo -; return; }; total=$((total + v / 1000)) ;;
      v2) v=$(awk '$1 == "usage_usec" {print $2}' "$file") || { echo -; return; }; total=$((total + v)) ;;
      *) echo -; return ;;
    esac
  done
  python3 -c "print($total / 1e6)"
}

# One inventory for the preparation (podman exec, as the lab does) and one per N over SSH (as a region does).
python3 - "$WORK" "$PATIENTS" "${SIZES[@]}" -- "${hosts[@]}" <<'PY'
import json, subprocess, sys
work, patients, rest = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
sizes, hosts = [int(n) for n in rest[: rest.index("--")]], rest[rest.index("--") + 1 :]
common = {"sesdf_esus_ibge": "530010", "sesdf_esus_aptidao": "inapta", "lab_patients": patients,
          "cnes_import_sources": {"regiao_norte": "/srv/ncais/cnes"},
          "lotes_export_destination": {"type": "path", "path": "/srv/ncais/lotes"},
          # the inapt UBS's off-host copy (the regime requires one): IT's share, a directory standing for it
          "backup_schedule_offhost_method": "mount", "backup_schedule_offhost_dest": "/srv/copia-ti/ubs",
          "backup_schedule_offhost_require_mount": False}
def host_vars(i, h):
    return {"sesdf_esus_cnes": f"009{i:04d}", "sesdf_esus_ubs_name": f"UBS {i} Bancada (laboratório)"}
def inventory(members, extra):
    hv = {h: {**host_vars(i, h), **extra.get(h, {})} for i, h in members}
    return {"all": {"vars": common, "children": {
        "ubs": {"children": {"regiao_norte": {"hosts": hv}}},
        "ubs_inaptas": {"hosts": {h: None for _, h in members}}}}}
numbered = list(enumerate(hosts, 1))
pod = {h: {"ansible_connection": "containers.podman.podman"} for h in hosts}
json.dump(inventory(numbered, pod), open(f"{work}/inv-podman.json", "w"), indent=1)
ssh = {}
for h in hosts:
    ip = subprocess.run(["podman", "inspect", "-f", "{{.NetworkSettings.IPAddress}}", h],
                        capture_output=True, text=True, check=True).stdout.strip()
    ssh[h] = {"ansible_host": ip, "ansible_user": "root", "ansible_connection": "ssh",
              "ansible_ssh_private_key_file": f"{work}/controller_key",
              # fresh lab containers: their host keys are new on every run
              "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"}
for n in sorted(set(sizes) | {1}):
    json.dump(inventory(numbered[:n], ssh), open(f"{work}/inv-ssh-{n}.json", "w"), indent=1)
PY
# The shaped link: one port on the controller's loopback per UBS, through slowlink.py to the UBS's sshd; the same
# inventories with ansible_host/ansible_port pointing there.
if [[ $WAN == 1 ]]; then
  targets=(); for h in "${hosts[@]}"; do targets+=("$(podman inspect -f '{{.NetworkSettings.IPAddress}}' "$h"):22"); done
  python3 "$HERE/slowlink.py" --ports-file "$WORK/wan-ports" --rate-kbit "${BENCH_FLEET_WAN_KBIT:-4000}" \
    --delay-ms "${BENCH_FLEET_WAN_DELAY_MS:-50}" "${targets[@]}" >"$WORK/slowlink.log" 2>&1 &
  SLOWLINK_PID=$!
  for _ in $(seq 100); do [[ -s $WORK/wan-ports ]] && break; sleep 0.1; done
  [[ -s $WORK/wan-ports ]] || { echo "the shaped link did not start: see $WORK/slowlink.log" >&2; exit 1; }
  python3 - "$WORK" <<'PY'
import glob, json, sys
work = sys.argv[1]
ports = {target.rsplit(":", 1)[0]: int(port) for port, target in (l.split() for l in open(f"{work}/wan-ports"))}
for path in glob.glob(f"{work}/inv-ssh-*.json"):
    inv = json.load(open(path))
    for hv in inv["all"]["children"]["ubs"]["children"]["regiao_norte"]["hosts"].values():
        hv["ansible_port"] = ports[hv["ansible_host"]]
        hv["ansible_host"] = "127.0.0.1"
    json.dump(inv, open(path.replace("inv-ssh-", "inv-wan-"), "w"), indent=1)
PY
fi
for f in "$WORK"/inv-*.json; do mv "$f" "${f%.json}.yml"; done  # JSON is YAML; the yaml plugin reads it

echo "preparing the UBS (PEC double 4.2.8, $PATIENTS synthetic patients each, sshd) ..." >&2
ANSIBLE_CONFIG=$HERE/ansible-tuned.cfg ANSIBLE_FORKS=$max ansible-playbook -i "$WORK/inv-podman.yml" \
  "$HERE/prepare.yml" -e "bench_fleet_key=$WORK/controller_key" >"$WORK/prepare.log" 2>&1 \
  || { tail -40 "$WORK/prepare.log" >&2; echo "preparation failed: see $WORK/prepare.log" >&2; exit 1; }

# One timed ansible-playbook run: a fresh SSH control directory each time (an AWX job starts in a new EE
# container, nothing persisted), the ansible.posix.json callback for per-task times, a fresh report directory.
seq=0
play() {  # play <label> <config> <N> <playbook> [ansible-playbook args...]
  local label=$1 config=$2 n=$3 playbook=$4; shift 4
  local base=${config%-wan} link=ssh
  [[ $config == *-wan ]] && link=wan
  local cfg=$HERE/ansible-$base.cfg strategy=""
  if [[ $base == free ]]; then cfg=$HERE/ansible-tuned.cfg strategy=free; fi
  seq=$((seq + 1))
  local out=$WORK/runs/$seq s e
  mkdir -p "$WORK/cp/$seq" "$out.reports"
  local u0 u1
  u0=$(ubs_cpu "$n")
  s=$(date +%s.%N)
  # bash's time keyword: the controller's CPU (ansible-playbook, its forks, the ssh clients), user and system
  local TIMEFORMAT='%U %S'
  if ! { time env ANSIBLE_CONFIG="$cfg" ${strategy:+ANSIBLE_STRATEGY=$strategy} ANSIBLE_SSH_CONTROL_PATH_DIR="$WORK/cp/$seq" \
    ANSIBLE_STDOUT_CALLBACK=ansible.posix.json ansible-playbook -i "$WORK/inv-$link-$n.yml" "$REPO/$playbook" \
    -e "report_dir=$out.reports" "$@" >"$out.json" 2>"$out.err"; } 2>"$out.cpu"; then
    tail -20 "$out.err" >&2; echo "$label ($config, N=$n, $playbook $*) failed: see $out.json" >&2; exit 1
  fi
  e=$(date +%s.%N)
  u1=$(ubs_cpu "$n")
  local used=-
  if [[ $u0 != - && $u1 != - ]]; then used=$(python3 -c "print($u1 - $u0)"); fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$config" "$n" "$playbook" "$(python3 -c "print($e - $s)")" "$out.json" \
    "$(awk '{print $1 + $2}' "$out.cpu")" "$used" \
    >>"$WORK/results.tsv"
  echo "  $label $config N=$n: $(python3 -c "print(round($e - $s, 1))") s" >&2
}

echo "fleet runs (sizes: ${SIZES[*]}; configs: ${CONFIGS[*]}; jobs: ${JOBS[*]}; $REPEAT round(s)) ..." >&2
# the rounds are interleaved, so a passing load on the machine spreads over all the figures instead of one
for ((round = 1; round <= REPEAT; round++)); do
  for n in "${SIZES[@]}"; do
    for c in "${CONFIGS[@]}"; do
      for j in "${JOBS[@]}"; do
        case $j in
          baseline) play baseline "$c" "$n" benchmarks/fleet/baseline.yml ;;
          health) play health "$c" "$n" playbooks/report.yml ;;
          check) play check "$c" "$n" playbooks/site.yml --check ;;
        esac
      done
    done
  done
done

if [[ $REGIME == 1 ]]; then
  echo "local-server regime on ${hosts[0]}: first run, then the idempotent re-runs ..." >&2
  play regime-first tuned 1 playbooks/site.yml
  for c in "${REGIME_CONFIGS[@]}"; do
    play regime-again "$c" 1 playbooks/site.yml
    # the night the weekly hardening audit is due (its cadence forced to every run)
    play regime-due "$c" 1 playbooks/site.yml -e regime_hardening_every_hours=0
  done
fi

python3 - "$WORK/results.tsv" "$(nproc)" "${BENCH_FLEET_UBS_TOTAL:-200}" "${BENCH_FLEET_WINDOW_H:-2}" \
  "$(sed -n 's/^forks *= *//p' "$HERE/ansible-tuned.cfg")" <<'PY'
import json, math, sys
from datetime import datetime
path, cpus, total, window_h, forks = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
rows = [line.rstrip("\n").split("\t") for line in open(path)]
SETTINGS = {"default": "Ansible defaults: forks 5, no pipelining, ControlPersist 60s, linear",
            "tuned": f"ansible-tuned.cfg: forks {forks}, pipelining, ControlPersist 600s, linear",
            "free": "ansible-tuned.cfg, strategy free"}
WAN = "over the shaped link (an inapt UBS's: 4 Mbit/s, 100 ms round trip)"
SETTINGS.update({f"{k}-wan": f"{v}, {WAN}" for k, v in list(SETTINGS.items())})
JOBS = {"baseline": "baseline: one ping per UBS", "health": "daily backup check (report.yml)",
        "check": "regime, check mode (site.yml --check)"}
def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
def parse(out):
    """(UBS task seconds, controller task seconds, UBS tasks, changed on the UBS) from the json callback."""
    doc = json.load(open(out))
    ubs = ctrl = 0.0
    count = 0
    for play in doc["plays"]:
        for t in play["tasks"]:
            d = t["task"]["duration"]
            sec = ts(d["end"]) - ts(d["start"]) if d.get("end") else 0.0
            if sorted(t["hosts"]) == ["localhost"]:
                ctrl += sec
            else:
                ubs, count = ubs + sec, count + 1
    changed = sum(v.get("changed", 0) for h, v in doc["stats"].items() if h != "localhost")
    return ubs, ctrl, count, changed
def table(head, lines, left=(0,)):
    w = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
    def fmt(r):
        return "| " + " | ".join(str(x).ljust(n) if i in left else str(x).rjust(n)
                                 for i, (x, n) in enumerate(zip(r, w))) + " |"
    print(fmt(head))
    print("|" + "|".join("-" * (n + 2) for n in w) + "|")
    for r in lines:
        print(fmt(r))
# each job, settings and N ran BENCH_FLEET_REPEAT times: the run of median wall time stands for it (its CPU
# figures and its per-task times), and the range of the walls shows the noise
runs = {}
for r in rows:
    if r[0] in JOBS:
        runs.setdefault((r[0], r[1], int(r[2])), []).append(r)
median = {k: sorted(v, key=lambda r: float(r[4]))[(len(v) - 1) // 2] for k, v in runs.items()}
spread = {k: (min(float(r[4]) for r in v), max(float(r[4]) for r in v), len(v)) for k, v in runs.items()}
fleet = {k: (float(r[4]), r[5]) for k, r in median.items()}
cpu = {k: float(r[6]) for k, r in median.items()}
ubs_cpu = {k: (None if r[7] == "-" else float(r[7])) for k, r in median.items()}
print(f"\nbench-fleet: lab UBS over SSH (one podman network), controller and UBS sharing the same {cpus} CPU(s)\n")
lines = []
for (job, cfg, n), (wall, _) in sorted(fleet.items(), key=lambda k: (list(JOBS).index(k[0][0]), list(SETTINGS).index(k[0][1]), k[0][2])):
    base = fleet.get((job, cfg, 1))
    ratio = wall / base[0] if base else None
    target = ("pass" if ratio <= 2 else "FAIL") if (cfg == "tuned" and n == 10 and base) else ""
    u = ubs_cpu[(job, cfg, n)]
    floor = (cpu[(job, cfg, n)] + u) / int(cpus) if u is not None else None
    lo, hi, count = spread[(job, cfg, n)]
    lines.append([JOBS[job], n, SETTINGS[cfg], count, f"{wall:.1f}", f"{lo:.1f}-{hi:.1f}", f"{wall / n:.2f}",
                  f"{ratio:.2f}x" if ratio else "-", target, f"{cpu[(job, cfg, n)]:.1f}",
                  "-" if u is None else f"{u:.1f}", "-" if floor is None else f"{floor:.1f}",
                  "-" if floor is None else f"{100 * floor / wall:.0f} %"])
table(["job", "N", "settings", "runs", "wall s", "walls s", "s/UBS", "vs N=1", "N=10 <= 2x N=1", "controller CPU s", "UBS CPU s",
       "CPU floor s", "floor/wall"], lines, left=(0, 2))
print(f"runs: how many times it ran (BENCH_FLEET_REPEAT, interleaved); wall s: the median run, whose figures\n"
      f"the other columns give; walls s: the least and the most of the runs.\n"
      f"controller CPU s: user + system of ansible-playbook, its forks and the ssh clients. UBS CPU s: what the N\n"
      f"UBS containers used during the run (their cgroups: sshd, the modules, PostgreSQL, the PEC double).\n"
      f"CPU floor s: (controller + UBS CPU) / {cpus} CPU(s), the least wall time these {cpus} CPU(s) allow for that\n"
      f"work; floor/wall near 100 % means the run was CPU-bound here, where the UBS share the controller's CPUs,\n"
      f"and no Ansible setting can bring N=10 under 2x N=1 without less CPU per UBS")
def ratio10(job):
    one, ten = fleet.get((job, "tuned", 1)), fleet.get((job, "tuned", 10))
    return ten[0] / one[0] if one and ten else None
base10 = ratio10("baseline")
if base10 is not None:
    print(f"baseline (tuned): one ping per UBS took {base10:.2f}x at N=10 what it took at N=1. That is the least a job\n"
          f"that reaches every UBS costs here (an SSH login, sudo, one Python module per UBS): the machine's floor\n"
          f"for the 2x target, whatever the job does.")
    for job in ("health", "check"):
        r = ratio10(job)
        if r is not None:
            print(f"  {JOBS[job]}: {r:.2f}x, {r - base10:+.2f} over the baseline")
regime = [r for r in rows if r[0].startswith("regime")]
HARD = "sesdf.esus.hardening : "
def by_role(out):
    """Per role (the task name's prefix before ' : '; 'playbook' for a play's own tasks): [seconds, tasks,
    changed on the UBS], summed over the plays of one run."""
    roles = {}
    owner = "playbook"
    for play in json.load(open(out))["plays"]:
        for t in play["tasks"]:
            d = t["task"]["duration"]
            sec = ts(d["end"]) - ts(d["start"]) if d.get("end") else 0.0
            name = t["task"]["name"]
            role = name.split(" : ", 1)[0] if " : " in name else "playbook"
            if role == "sesdf.esus.runtime":  # counted with the role that installs the program (its check mode)
                role = owner
            elif role != "playbook":  # include tasks carry no role prefix
                owner = role
            acc = roles.setdefault(role, [0.0, 0, 0])
            acc[0] += sec
            acc[1] += 1
            acc[2] += sum(1 for h, v in t["hosts"].items() if h != "localhost" and v.get("changed"))
    return roles
if regime:
    print("\nlocal-server regime of an inapt UBS, on one UBS: site.yml (job template \"sesdf.esus - inventário e "
          "relatório\"),\nhardening in audit mode (the default), the daily backup job, the weekly jobs, the report\n")
    lines = []
    for r in regime:
        roles = by_role(r[5])
        drift = roles.get("sesdf.esus.hardening", [0, 0, 0])[2]
        applied = sum(v[2] for k, v in roles.items() if k != "sesdf.esus.hardening")
        again = r[0] != "regime-first"
        title = {"regime-first": "first run (converges)", "regime-again": "idempotent re-run (nightly)",
                 "regime-due": "idempotent re-run, hardening due"}[r[0]]
        limit = {"regime-again": 30, "regime-due": 60}.get(r[0])
        lines.append([f"{title}, {r[1]}", f"{float(r[4]):.1f}",
                      sum(v[1] for v in roles.values()), applied, drift,
                      (f"{'pass' if float(r[4]) < limit else 'FAIL'} (< {limit} s)") if limit else "",
                      ("yes" if applied == 0 else "NO") if again else ""])
        for role, (sec, count, changed) in sorted(roles.items(), key=lambda kv: -kv[1][0]):
            lines.append([f"  {role}", f"{sec:.1f}", count, "" if role == "sesdf.esus.hardening" else changed,
                          changed if role == "sesdf.esus.hardening" else "", "", ""])
    table(["run", "wall s", "tasks", "changed", "hardening changed", "target", "idempotent"], lines)
    print("role rows: the sum of that role's task times (skipped tasks included; sesdf.esus.runtime's tasks counted\n"
          "with the role that installs the program). changed: tasks that changed the UBS outside the hardening role;\n"
          "hardening changed: in audit mode (the default) the controls run in check mode, so these are the controls in\n"
          "drift, reported and not applied. nightly: the hardening result recorded within regime_hardening_every_hours\n"
          "(156 h), so the step says when it last ran; hardening due: -e regime_hardening_every_hours=0, the night of\n"
          "the weekly audit")
    costly = {}
    last = [r for r in regime if r[0] == "regime-due"][-1:] or regime[-1:]
    for r in last:
        for play in json.load(open(r[5]))["plays"]:
            for t in play["tasks"]:
                d = t["task"]["duration"]
                sec = ts(d["end"]) - ts(d["start"]) if d.get("end") else 0.0
                key = t["task"]["name"]
                costly[key] = (costly.get(key, (0, 0.0))[0] + 1, costly.get(key, (0, 0.0))[1] + sec)
    print(f"costliest tasks of the {last[0][0]} ({last[0][1]}):")
    for key, (times, sec) in sorted(costly.items(), key=lambda kv: -kv[1][1])[:5]:
        print(f"  {sec:6.1f} s  {times}x  {key}")
# Projection over `total` UBS with the tuned forks, from the tuned runs of a job: the UBS tasks per wave of `forks`
# UBS (measured at the largest N <= forks), the controller's plays (localhost: summary, report, verdict) fitted as
# a + b*N over the measured sizes, the rest (start, inventory, parsing) as measured.
def project(job, what, settings="tuned"):
    sizes = sorted(n for (j, cfg, n) in fleet if j == job and cfg == settings)
    cands = [n for n in sizes if n <= forks]
    if not cands:
        return
    n = cands[-1]
    wall, out = fleet[(job, settings, n)]
    wave, ctrl_n, count, _ = parse(out)
    if len(sizes) > 1:  # least squares over the measured sizes; a negative slope (noise) counts as none
        c = [parse(fleet[(job, settings, m)][1])[1] for m in sizes]
        mx, my = sum(sizes) / len(sizes), sum(c) / len(c)
        b = sum((x - mx) * (y - my) for x, y in zip(sizes, c)) / sum((x - mx) ** 2 for x in sizes)
        b = max(b, 0.0)
        a = my - b * mx
        fit = "least squares on " + ", ".join(f"N={m}: {y:.2f} s" for m, y in zip(sizes, c))
    else:
        a, b, fit = 0.0, ctrl_n / n, f"only N={n} measured: all of it counted per UBS, an upper bound"
    fixed = wall - wave - ctrl_n
    per_wave = min(forks, n)
    waves = math.ceil(total / per_wave)
    proj = fixed + waves * wave + a + b * total
    print(f"\nprojection: {what} on {total} UBS, forks {forks}, from the {settings} run at N={n}:")
    print(f"  W = {wave:.2f} s  the UBS tasks ({count}) for one wave of {per_wave} UBS (sum of the task times)")
    print(f"  R(N) = a + b*N  the controller's plays: a = {a:.2f} s, b = {b:.3f} s/UBS ({fit})")
    print(f"  F = {fixed:.2f} s  the rest of the wall time at N={n} (start, inventory, playbook parsing)")
    print(f"  T = F + ceil({total}/{per_wave})*W + a + b*{total} = {fixed:.2f} + {waves}*{wave:.2f} + {a:.2f} + "
          f"{b:.3f}*{total} = {proj:.0f} s ({proj / 60:.1f} min); {window_h:g} h window: "
          f"{'pass' if proj <= window_h * 3600 else 'FAIL'}")
    if per_wave < forks:
        print(f"  (largest measured N={n} < forks {forks}: waves of {n} UBS assumed, which overestimates T)")
    # the other bound: the controller's own CPU (templating, forks, ssh), which no remote server's speed removes
    per_ubs = cpu[(job, settings, n)] / n
    cores = int(cpus)
    t_cpu = total * per_ubs / cores
    print(f"  C = {per_ubs:.2f} s  the controller's CPU per UBS at N={n}; {total}*C/{cores} CPU(s) = {t_cpu:.0f} s "
          f"({t_cpu / 60:.1f} min): max(T, that) = {max(proj, t_cpu) / 60:.1f} min; {window_h:g} h window: "
          f"{'pass' if max(proj, t_cpu) <= window_h * 3600 else 'FAIL'}")
for settings in ("tuned", "tuned-wan"):
    project("check", "the regime's night (site.yml --check on inapt UBS, every one with its weekly hardening due)",
            settings)
    project("health", "the daily backup check (report.yml)", settings)
PY
