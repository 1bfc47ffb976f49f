#!/bin/sh
# Builds the PEC e-SUS APS TEST DOUBLE installers from this one source tree:
#   OUT/eSUS-AB-PEC-{4.2.8,4.5.2,4.5.5,5.5.28}-Linux64.jar, OUT/broken/eSUS-AB-PEC-4.5.2-Linux64.jar,
#   OUT/mudo/eSUS-AB-PEC-4.5.2-Linux64.jar (installs cleanly; its application never answers), OUT/SHA256SUMS
# and installs the data generator as $PEC_DOUBLE_BIN_DIR/pec-double-generate (default /usr/local/bin) and the
# PostgreSQL 9.6 client-tool shim as $PEC_DOUBLE_LIB_DIR/pg96-shim (default /usr/local/lib/pec-double).
# Needs: javac/jar (JDK 11+), the PostgreSQL JDBC driver (Debian libpostgresql-jdbc-java), unzip.
# Usage: build.sh OUT_DIR
set -eu
out_dir=${1:?usage: build.sh OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
work=$here/out
jdbc=$(readlink -f "${PEC_DOUBLE_JDBC_JAR:-/usr/share/java/postgresql.jar}")
bin_dir=${PEC_DOUBLE_BIN_DIR:-/usr/local/bin}
lib_dir=${PEC_DOUBLE_LIB_DIR:-/usr/local/lib/pec-double}
migrations=4.3.2,4.5.2,4.5.5,5.5.28

[ -f "$jdbc" ] || { echo "JDBC driver not found: $jdbc (install libpostgresql-jdbc-java)" >&2; exit 1; }
rm -rf "$work"; mkdir -p "$work/classes" "$work/driver" "$out_dir/broken" "$out_dir/mudo"
find "$here/src" -name '*.java' | sort >"$work/sources.txt"
javac --release 11 -encoding UTF-8 -d "$work/classes" "@$work/sources.txt"
# The installer runs its migrations over JDBC: the driver's classes go inside the installer jar.
(cd "$work/driver" && unzip -q -o "$jdbc" -x 'META-INF/MANIFEST.MF')

build_one() { # version broken target
  v=$1; broken=$2; target=$3; st=$work/stage-$v-$broken
  mkdir -p "$st/app" "$st/inst/payload" "$st/inst/sql/migrations" "$st/inst/sql/strict"
  printf 'version=%s\nbroken=%s\nmigrations=%s\nproduct=e-SUS APS PEC (dublê de teste)\n' "$v" "$broken" "$migrations" >"$st/version.properties"
  # pec-bundle.jar: the application, with the JDBC driver beside it in lib/.
  cp -r "$work/classes/." "$st/app/"; cp "$st/version.properties" "$st/app/"
  printf 'Main-Class: br.gov.saude.esus.pecdouble.App\nClass-Path: lib/postgresql.jar\nImplementation-Version: %s\n' "$v" >"$st/app.mf"
  jar --create --file "$st/inst/payload/pec-bundle.jar" --manifest "$st/app.mf" -C "$st/app" .
  cp "$jdbc" "$st/inst/payload/postgresql.jar"
  # the installer: its classes, the driver, the SQL and the payload.
  cp -r "$work/classes/." "$work/driver/." "$st/inst/"; cp "$st/version.properties" "$st/inst/"
  cp "$here/sql/baseline-4.2.8.sql" "$st/inst/sql/"; cp "$here/sql/migrations/"*.sql "$st/inst/sql/migrations/"
  cp "$here/sql/strict/"*.sql "$st/inst/sql/strict/"
  printf 'Main-Class: br.gov.saude.esus.pecdouble.Installer\nImplementation-Version: %s\n' "$v" >"$st/inst.mf"
  jar --create --file "$target" --manifest "$st/inst.mf" -C "$st/inst" .
  echo "built $target"
}

for v in 4.2.8 4.5.2 4.5.5 5.5.28; do build_one "$v" false "$out_dir/eSUS-AB-PEC-$v-Linux64.jar"; done
build_one 4.5.2 true "$out_dir/broken/eSUS-AB-PEC-4.5.2-Linux64.jar"
build_one 4.5.2 mudo "$out_dir/mudo/eSUS-AB-PEC-4.5.2-Linux64.jar"
(cd "$out_dir" && sha256sum eSUS-AB-PEC-*-Linux64.jar broken/eSUS-AB-PEC-*-Linux64.jar mudo/eSUS-AB-PEC-*-Linux64.jar >SHA256SUMS)

if mkdir -p "$bin_dir" 2>/dev/null && [ -w "$bin_dir" ]; then
  install -m 0755 "$here/generator/pec-double-generate" "$bin_dir/pec-double-generate"
  echo "installed $bin_dir/pec-double-generate"
fi
# The 9.6 client-tool shim the installers link the PEC's bin/ to (pg96/pg96-shim).
if mkdir -p "$lib_dir" 2>/dev/null && [ -w "$lib_dir" ]; then
  install -m 0755 "$here/pg96/pg96-shim" "$lib_dir/pg96-shim"
  echo "installed $lib_dir/pg96-shim"
fi
rm -rf "$work"
