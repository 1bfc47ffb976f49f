#!/bin/sh
# File mode fixtures in the lote inbox ($1) and GPMA's second share ($2), once:
# - the operator's lote (saved from the PEC into /root/Downloads by prepare), dropped into the inbox; with 400
#   records it is bigger than the share's free space (see below);
# - "... (1).zip": the same download saved twice by the browser (the same bytes): not sent again;
# - RAS_Lote90: the operator's lote cut short (an interrupted download): invalid, reported, left, never sent;
# - RAS_Lote91: the operator's lote with another unit's CNES in every record (a lote of another UBS): refused;
# - RAS_Lote92: garbage under a lote's name: refused;
# - $2: a 64 KiB tmpfs, so the copy of the operator's lote starts and dies half-way (no space left), as a share that
#   fills up or goes away mid-copy; the converge gives it room afterwards and runs the export again.
# Every file is dated an hour back (settled).
set -eu
inbox=$1 share=$2
mkdir -p "$inbox"
chmod 0700 "$inbox"
saved=$(find /root/Downloads -maxdepth 1 -name "RAS_Lote*.zip" | sort | head -1)
name=$(basename "$saved" .zip)
cp "$saved" "$inbox/$name.zip"
cp "$saved" "$inbox/$name (1).zip"
size=$(stat -c %s "$saved")
head -c $((size / 2)) "$saved" > "$inbox/RAS_Lote90_01-12-2026--10-00.zip"
python3 - "$saved" "$inbox/RAS_Lote91_01-12-2026--10-01.zip" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as src, zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED) as dst:
    for info in src.infolist():
        data = src.read(info).replace(b"0030001", b"0039999")
        dst.writestr(info.filename.replace("0030001", "0039999"), data)
PY
head -c 4096 /dev/urandom > "$inbox/RAS_Lote92_01-12-2026--10-02.zip"
touch -d '-1 hour' "$inbox"/RAS_Lote*.zip
sha256sum "$saved" | cut -d' ' -f1 > /root/lotefile-saved.sha256
sha256sum "$inbox/RAS_Lote90_01-12-2026--10-00.zip" | cut -d' ' -f1 > /root/lotefile-truncado.sha256
mkdir -p "$share"
mountpoint -q "$share" || mount -t tmpfs -o size=64k,mode=0755 tmpfs "$share"
touch /root/lotefile-fixtures
