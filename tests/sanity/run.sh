#!/usr/bin/env bash
# Run `ansible-test sanity` (full default test set, Python 3.11, controller + target) on
# sesdf.esus without reaching any host but PyPI (and Debian's archive for shellcheck).
# Called by `make sanity`; works standalone too: bash tests/sanity/run.sh [extra ansible-test args]
#
# What would otherwise need the network, and what this script does about it:
# * ansible-test creates one virtual environment per sanity test (cached in
#   ~/.ansible/test/venv) and bootstraps pip into it with ~/.ansible/test/cache/get_pip_<ver>.py,
#   which it downloads from ci-files.testing.ansible.com when that file is missing
#   (ansible_test/_util/target/setup/requirements.py: bootstrap()). That host is unreachable
#   here, so we pre-seed that cache file, as ansible-test's own error message suggests. We build
#   it from the pip wheel ansible-test asks for, downloaded from PyPI with a pinned sha256
#   (tests/sanity/pip-bootstrap.txt), using tests/sanity/make_get_pip.py: the result does
#   what get-pip.py does (run the embedded pip to install pip==<ver>).
# * The per-test requirements (pylint, yamllint, voluptuous, antsibull-changelog, ...) are
#   installed by ansible-test itself from its pinned lists, from PyPI, with the ordinary pip
#   configuration of the machine (pip.conf, PIP_CERT/PIP_INDEX_URL/proxy variables are honoured).
# * shellcheck is a Debian package: installed with apt-get when missing and we are root.
#
# ansible-test needs the collection under .../ansible_collections/sesdf/esus, so the files git
# knows about (tracked + untracked-not-ignored; never .venv/ or build/) are copied afresh to
# build/sanity/ansible_collections/sesdf/esus and the tests run there. Results:
# build/sanity/ansible_collections/sesdf/esus/tests/output/ (junit XML under junit/).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$REPO/tests/sanity
BUILD=$REPO/build/sanity
DEST=$BUILD/ansible_collections/sesdf/esus
PYTHON_VERSION=3.11
export PATH="$REPO/.venv/bin:$PATH"

log() { printf '[sanity] %s\n' "$*" >&2; }
die() { printf '[sanity] ERROR: %s\n' "$*" >&2; exit 2; }

start=$SECONDS
command -v ansible-test >/dev/null || die "ansible-test not found; create the venv first (make venv)"
py=$REPO/.venv/bin/python
[[ -x $py ]] || py=$(command -v python3)

# --- 1. pip bootstrap script for ansible-test's cache -------------------------------------------
pip_version=$("$py" -c 'import types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version="'"$PYTHON_VERSION"'"))["pip"])')
pinned=$(sed -n 's/^pip==\([^ ]*\) .*/\1/p' "$HERE/pip-bootstrap.txt")
pinned_sha=$(sed -n 's/.*--hash=sha256:\([0-9a-f]*\).*/\1/p' "$HERE/pip-bootstrap.txt")
[[ $pip_version == "$pinned" ]] || die "ansible-test wants pip $pip_version for its venvs but \
tests/sanity/pip-bootstrap.txt pins pip $pinned: update the version and its sha256 there"

get_pip=$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py
if [[ -s $get_pip ]]; then
    log "using cached pip $pip_version bootstrap script $get_pip"
else
    log "building pip $pip_version bootstrap script $get_pip from PyPI's pip-$pip_version wheel"
    mkdir -p "$BUILD/cache" "$(dirname "$get_pip")"
    "$py" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
        -r "$HERE/pip-bootstrap.txt" -d "$BUILD/cache"
    "$py" "$HERE/make_get_pip.py" "$BUILD/cache/pip-$pip_version-py3-none-any.whl" \
        "$pinned_sha" "$get_pip"
fi

# --- 2. fresh copy of the collection ------------------------------------------------------------
git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1 || die "$REPO is not a git checkout"
log "copying collection to $DEST"
rm -rf "$BUILD/ansible_collections"
mkdir -p "$DEST"
(
    cd "$REPO"
    git ls-files -z -co --exclude-standard -- . ':!:.venv' ':!:build' |
        while IFS= read -r -d '' f; do
            # skip tracked files deleted in the work tree
            if [[ -e $f || -L $f ]]; then printf '%s\0' "$f"; fi
        done |
        tar --null --no-recursion -T - -cf - | tar -xf - -C "$DEST"
)
# The copy lies inside this repo's work tree, where build/ is git-ignored. ansible-test looks for
# .git upwards from the collection root and lists content with `git ls-files --cached --others
# --exclude-standard`, so without a repository of its own the copy would look empty ("All targets
# skipped"). An empty repository makes it list exactly the copied files.
git -c init.defaultBranch=main init -q "$DEST"

# --- 3. external tools --------------------------------------------------------------------------
skip=()
if ! command -v shellcheck >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    log "installing shellcheck (Debian package) for the shellcheck sanity test"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null; }; then
        log "apt-get install shellcheck failed"
    fi
fi
if ! command -v shellcheck >/dev/null; then
    # Not silent: without shellcheck ansible-test would only warn and pass the test.
    log "SKIPPING shellcheck: shellcheck is not installed (apt-get install shellcheck)"
    skip+=(--skip-test shellcheck)
fi
ps_files=$(find "$DEST" \( -name '*.ps1' -o -name '*.psm1' -o -name '*.psd1' \) -printf '%P\n' | head -n 3) || true
if [[ -n $ps_files ]] && ! command -v pwsh >/dev/null; then
    # pslint needs PowerShell (pwsh), which none of the reachable registries (Debian, PyPI, npm)
    # provides. Today the collection has no PowerShell files, pslint has no targets and runs as a
    # no-op; should such files appear, skip it explicitly rather than let ansible-test only warn.
    log "SKIPPING pslint: PowerShell files present (${ps_files//$'\n'/ }) but pwsh is not installed"
    skip+=(--skip-test pslint)
fi

# --- 4. run -------------------------------------------------------------------------------------
cd "$DEST"
log "ansible-test sanity --python $PYTHON_VERSION --junit ${skip[*]} $*"
rc=0
ansible-test sanity --python "$PYTHON_VERSION" --junit --color no "${skip[@]}" "$@" || rc=$?
log "finished in $((SECONDS - start))s with exit code $rc; results in $DEST/tests/output"
exit "$rc"
