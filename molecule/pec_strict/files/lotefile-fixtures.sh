#!/bin/sh
# File mode fixtures in the PEC's watched lote directory ($1) and GPMA's second share ($2), once:
# - salvo-copia.zip: the PEC's automatic lote saved again by an operator under another name (the same bytes);
# - salvo-grande.zip: a valid lote an operator saved from the UI, bigger than the share's free space (see below);
# - salvo-truncado.zip: a lote cut short (an interrupted save): invalid, reported, left in place, never sent;
# - $2: a 64 KiB tmpfs, so the copy of salvo-grande.zip starts and dies half-way (no space left), as a share that
#   fills up or goes away mid-copy; the converge gives it room afterwards and runs the export again.
# The operator's files are dated an hour back (settled); the PEC's own file is not touched.
set -eu
dir=$1 share=$2
first=$(find "$dir" -maxdepth 1 -name "lote-*.zip" | sort | head -1)
cp "$first" "$dir/salvo-copia.zip"
size=$(stat -c %s "$first")
head -c $((size / 2)) "$first" > "$dir/salvo-truncado.zip"
python3 - "$dir/salvo-grande.zip" <<'PY'
import os, sys, uuid, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as archive:
    for _ in range(3):
        archive.writestr(f"0030001-{uuid.uuid4()}.esus", os.urandom(100 * 1024))
PY
touch -d '-1 hour' "$dir/salvo-copia.zip" "$dir/salvo-truncado.zip" "$dir/salvo-grande.zip"
sha256sum "$dir/salvo-truncado.zip" | cut -d' ' -f1 > /root/lotefile-truncado.sha256
sha256sum "$dir/salvo-grande.zip" | cut -d' ' -f1 > /root/lotefile-grande.sha256
mkdir -p "$share"
mountpoint -q "$share" || mount -t tmpfs -o size=64k,mode=0755 tmpfs "$share"
# the PEC's own file must have settled (the converge's settle time is 30 s)
while [ $(( $(date +%s) - $(stat -c %Y "$first") )) -lt 35 ]; do sleep 1; done
touch /root/lotefile-fixtures
