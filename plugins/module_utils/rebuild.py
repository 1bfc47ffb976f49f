# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rebuild of a lost UBS server on new hardware from its off-host copy alone (docs/rebuild.md): what the
``sesdf.esus.pec_rebuild`` module does for each step of the ``sesdf.esus.rebuild`` role.

- ``target_state`` / ``decide``: what the target server holds (a PEC, with data?) and whether the rebuild may go on;
  a PEC holding data is refused unless the operator says to replace it (then its database is kept aside).
- ``fetch_borg`` / ``fetch_share``: the newest archive of this UBS (or the newest of a chosen day) into a work
  directory on the target: the dump (re-compressed as a local archive with its sha256), the collection's state tree
  (collection_state) and what proves a restore (the backup's row counts and ordered-row hashes). An archive that
  cannot be read whole (borg authenticates every chunk; a share copy is checked against its sha256) is skipped for
  the previous one, and the result says which and why. A repository or a copy of another UBS is refused.
- ``installer`` / ``install``: the PEC installer of the version the backup records, from IT's share, sha256 checked.
- ``restore_and_prove``: the dump into a scratch database, its per-table row counts and ordered-row hashes compared
  with the backup's, and only then the swap into place.
- ``link``: LINKINSTALACAO pointed at the new server where the probe (pec_compat ``installation_link``) allows it.
- ``put_state_back``: the collection's state files where they were, as recorded.
- ``record``: the rebuild's record (pec_state concern ``rebuild``), one step at a time, and its history.

Standard library only.
"""

from __future__ import annotations

import json
import os
import re
import shutil

from ansible_collections.sesdf.esus.plugins.module_utils import _paths
from ansible_collections.sesdf.esus.plugins.module_utils import collection_state as cs
from ansible_collections.sesdf.esus.plugins.module_utils._borg import (
    DENIED,
    DOWN,
    NO_REPOSITORY,
    NOT_A_REPOSITORY,
    WRONG_PASSPHRASE,
    BorgError,
    last_lines,
)
from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import (
    CHUNK,
    read_json,
    sha256_file,
    unlink_quiet,
    write_json,
)
from ansible_collections.sesdf.esus.plugins.module_utils._runner import PIPE, Runner
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import iso, utcnow
from ansible_collections.sesdf.esus.plugins.module_utils._transfer import sidecar_text
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError, normalize_version
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient, database_version, sql_literal
from ansible_collections.sesdf.esus.plugins.module_utils.pec_drill import compare_counts, compare_hashes, table_hashes
from ansible_collections.sesdf.esus.plugins.module_utils.pec_restore import (
    create_database_like,
    database_exists,
    drop_database,
    restore_into,
    row_counts,
    swap_in,
)

CONCERN = "rebuild"
FETCHED = "fetched.json"
SOURCES = ("borg_ssh", "borg_mount", "mount")
DEFAULT_DATA_TABLES = ("tb_dado_transp", "tb_lote_transp", "tb_cidadao")
DEFAULT_STATE_SKIP = ("sesdf_esus_backup.fact", "sesdf_esus_rebuild.fact")
STEPS = ("preflight", "fetch", "install", "restore", "state", "link", "rekey", "record", "handover")
HISTORY = 20
PIPELINE = Runner(pdeathsig=True)
_STAMP = re.compile(r"(\d{8}T\d{6}Z)$")
_SHARE_NAME = re.compile(
    r"^(?P<stem>(?P<db>[A-Za-z0-9_]+)_(?P<label>[A-Za-z0-9._-]+)_(?P<ts>\d{8}T\d{6}Z))\.pgdump\.zst"
)
_VERSION = re.compile(rb"^v?\d+(?:\.\d+)+")


# ------------------------------------------------------------------------------------------------ preflight
def data_counts(client, tables):
    """{table: rows} of the production tables that exist in this database (a fresh install has none)."""
    found = {
        row[0]
        for row in client.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name IN ("
            + ", ".join(sql_literal(t) for t in tables)
            + ")",
            record=False,
        )
    }
    counts = {}
    for table in tables:
        if table in found:
            counts[table] = int(client.query(f'SELECT count(*) FROM "{table}"', record=False)[0][0])
    return counts


def target_state(install, app_state, data_tables=DEFAULT_DATA_TABLES, timeout=60):
    """What the target server holds: {pec, version, app, database: {reachable, error, counts, size_bytes},
    has_data}. Never raises: what cannot be read says so."""
    out = {"pec": install.present, "version": None, "app": app_state, "database": None, "has_data": False}
    if not install.present:
        return out
    try:
        out["version"] = normalize_version(install.config().get("version"))
    except PecError as exc:
        out["version_error"] = exc.msg
    database = {"reachable": False, "error": None, "counts": {}, "size_bytes": None}
    try:
        with PgClient(install.pg_bin_dir(), install.connection(), timeout=timeout) as client:
            client.query("SELECT 1", record=False)
            database["reachable"] = True
            try:
                database["version"] = normalize_version(database_version(client))
            except PecError:
                database["version"] = None
            database["size_bytes"] = int(
                client.query("SELECT pg_database_size(current_database())", record=False)[0][0]
            )
            database["counts"] = data_counts(client, data_tables)
    except PecError as exc:
        database["error"] = exc.msg
    out["database"] = database
    out["has_data"] = any(n > 0 for n in database["counts"].values())
    return out


def found_text(target):
    """What the target holds, in Portuguese (the refusal and the plan say it)."""
    if not target["pec"]:
        return "nenhum PEC instalado"
    db = target["database"] or {}
    if not db.get("reachable"):
        return f"um PEC {target['version'] or '(versão ilegível)'} cujo banco não responde ({db.get('error')})"
    rows = ", ".join(f"{t}: {n}" for t, n in sorted(db["counts"].items())) or "nenhuma tabela de produção"
    size = f"{(db.get('size_bytes') or 0) / 1048576:.0f} MiB"
    return f"um PEC {target['version'] or db.get('version') or '?'} com banco de {size} ({rows})"


def decide(target, done_steps, replace):
    """(decision, message): ``resume`` (this rebuild restored the database already), ``rebuild`` or ``refuse``."""
    if "restore" in done_steps:
        return "resume", "a reconstrução deste servidor já restaurou o banco: segue dos passos que faltam"
    if target["has_data"] and not replace:
        return "refuse", (
            f"este servidor já tem {found_text(target)}: a reconstrução substituiria esses dados. Nada foi alterado. "
            "Se é mesmo este o servidor a reconstruir, rode de novo com rebuild_replace: true (o banco atual fica "
            "guardado ao lado, como <banco>_pre_rebuild_<data>). / This server already holds a PEC with data; "
            "nothing was changed; set rebuild_replace: true to replace it (its database is kept aside)."
        )
    if target["pec"] and target["database"] and not target["database"].get("reachable") and not replace:
        return "refuse", (
            f"este servidor já tem {found_text(target)}: não dá para saber se há dados. Nada foi alterado. Suba o "
            "banco do PEC e rode de novo, ou use rebuild_replace: true para substituí-lo."
        )
    return "rebuild", f"alvo: {found_text(target)}"


# ------------------------------------------------------------------------------------------ choosing an archive
def stamp(name):
    match = _STAMP.search(name)
    return match.group(1) if match else ""


def candidates(names, prefix, label, day=None):
    """This UBS's archives of ``label`` newest first; with ``day`` (YYYY-MM-DD) the newest of that day first, then
    the older ones (the fallback). Raises PecError when none is left, naming the days there are."""
    pattern = re.compile(rf"^{re.escape(prefix)}{re.escape(label)}-\d{{8}}T\d{{6}}Z$")
    ours = sorted((n for n in names if pattern.match(n)), key=stamp, reverse=True)
    if day:
        limit = day.replace("-", "")
        if not re.fullmatch(r"\d{8}", limit):
            raise PecError(f"rebuild_archive_date must be a date AAAA-MM-DD, not {day!r}")
        kept = [n for n in ours if stamp(n)[:8] <= limit]
        if not kept:
            days = sorted({f"{stamp(n)[:4]}-{stamp(n)[4:6]}-{stamp(n)[6:8]}" for n in ours})
            raise PecError(
                f"no backup of this UBS on {day} or before it; the copies hold the days {', '.join(days) or 'none'}"
            )
        ours = kept
    if not ours:
        raise PecError(f"no backup of this UBS labelled {label!r} ({prefix}{label}-*) in the off-host copy")
    return ours


def borg_failure(exc, location):
    """A rebuild's words for a borg failure on the repository (what the operator gave may be wrong)."""
    if exc.kind == WRONG_PASSPHRASE:
        return (
            f"a senha informada não abre o repositório {location}: ou não é a senha desta UBS (confira o arquivo do "
            "cofre desta UBS, <servidor>-borg.txt, ou rebuild_borg_passphrase), ou o repositório é de outra UBS. "
            "Nada foi alterado no servidor. / The passphrase given does not open the repository: not this UBS's, or "
            "the repository is another UBS's."
        )
    if exc.kind in (NO_REPOSITORY, NOT_A_REPOSITORY):
        return (
            f"não há repositório borg em {location}: confira backup_schedule_offhost_dest desta UBS. Nada foi "
            "alterado. / There is no borg repository there."
        )
    if exc.kind in (DOWN, DENIED):
        return exc.msg + " (a reconstrução precisa do servidor de backup: confira a rede e a chave autorizada)"
    return exc.msg


def borg_said(stderr):
    """What borg said, in one line: the exception's own line after a traceback, else its last lines."""
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    for line in lines:
        if re.match(r"^[\w.]+(Error|NotFound|Exception|Integrity\w*): ", line) or "not found in repository" in line:
            return line
    return last_lines(stderr)


def open_repository(repo, prefix):
    """(repository id, every archive name) of a repository this UBS may be rebuilt from; raises PecError otherwise."""
    try:
        info = repo.info()
        names = [a["name"] for a in repo.archives()]
    except BorgError as exc:
        raise PecError(borg_failure(exc, repo.location), kind=exc.kind) from exc
    foreign = sorted(n for n in names if not n.startswith(prefix))
    ours = [n for n in names if n.startswith(prefix)]
    if not ours:
        other = f"; ele guarda cópias de outra UBS ({', '.join(foreign[:3])})" if foreign else ""
        raise PecError(
            f"o repositório {repo.location} não tem nenhuma cópia desta UBS ({prefix}*){other}: é o repositório de "
            "outra UBS ou está vazio. Nada foi alterado. Aponte backup_schedule_offhost_dest para o repositório "
            "desta UBS. / The repository holds no archive of this UBS."
        )
    if foreign:
        raise PecError(
            f"o repositório {repo.location} mistura cópias desta UBS com as de outra ({', '.join(foreign[:3])}): "
            "nada foi alterado; o NTINF precisa ver esse repositório antes de qualquer reconstrução."
        )
    return info["id"], names


# ---------------------------------------------------------------------------------------------- what proves it
def proof_from(comment, backup_manifest):
    """What a restore of this backup is compared with: the backup's own manifest (every hash whole) when it is the
    same backup as the archive's comment says, else the comment (hashes cut to 32 hex digits)."""
    manifest = backup_manifest or {}
    same = bool(manifest) and (not comment.get("sha256") or manifest.get("sha256") == comment.get("sha256"))
    source = manifest if same else comment
    return {
        "source": "manifest" if same else "comment",
        "row_counts": source.get("row_counts"),
        "changed_during_dump": source.get("changed_during_dump") or [],
        "row_hashes": source.get("row_hashes"),
        "row_hash_encoding": source.get("row_hash_encoding"),
        "db_timezone": source.get("db_timezone") or comment.get("db_timezone"),
        "sha256": manifest.get("sha256") or comment.get("sha256"),
        "created_at": source.get("created_at") or comment.get("created_at"),
        "pec_version": source.get("pec_version") or comment.get("pec_version"),
    }


def version_in_dump(path, zstd):
    """The PEC version a dump holds (the VERSAOBANCODADOS row of tb_config_sistema, plain text in an uncompressed
    custom dump), for a backup made before the manifest recorded it; None when not found."""
    proc = PIPELINE.spawn([zstd, "-dc", "-q", path], stdout=PIPE, stderr=PIPE)
    found = None
    try:
        tail = b""
        for block in iter(lambda: proc.stdout.read(CHUNK), b""):
            data = tail + block
            at = data.find(b"VERSAOBANCODADOS\t")
            if at >= 0 and data.find(b"\n", at) >= 0:
                line = data[at : data.find(b"\n", at)]
                for field in line.split(b"\t")[1:]:
                    match = _VERSION.match(field)
                    if match:
                        found = normalize_version(match.group(0).decode())
                        break
                break
            tail = data[-4096:]
    finally:
        proc.stdout.close()
        proc.kill()
        proc.wait()
        proc.stderr.close()
    return found


# ------------------------------------------------------------------------------------------------------ fetch
def _previous_fetch(work):
    """The fetch a former run finished in ``work``, when its files are still whole; else None."""
    try:
        fetched = read_json(os.path.join(work, FETCHED), "rebuild fetch record")
    except PecError:
        return None
    if not isinstance(fetched, dict) or not os.path.isfile(fetched.get("dump") or ""):
        return None
    if fetched.get("tree") and not os.path.isdir(fetched["tree"]):
        return None
    if sha256_file(fetched["dump"]) != fetched.get("dump_sha256"):
        return None
    return fetched


def _finish_fetch(work, got, params, skipped, repository_id=None):
    """Checks common to every source, then the record of the fetch in ``work``."""
    cnes = str(params.get("cnes") or "")
    tree_manifest = got.pop("tree_manifest", None) or {}
    if tree_manifest.get("cnes") and cnes and tree_manifest["cnes"] != cnes:
        raise PecError(
            f"a cópia {got['archive']} é da UBS de CNES {tree_manifest['cnes']}, não desta ({cnes}): nada foi alterado"
        )
    if repository_id and got.get("tree"):
        recorded = os.path.join(got["tree"], _state_file(tree_manifest, "borg-repo.json").lstrip("/"))
        try:
            state = read_json(recorded, "borg repository state") or {}
        except PecError:
            state = {}
        if state.get("repository_id") and state["repository_id"] != repository_id:
            raise PecError(
                f"o estado desta UBS registra o repositório {state['repository_id']}, não o {repository_id} de onde "
                "a cópia veio: nada foi alterado; confira backup_schedule_offhost_dest"
            )
    if not got.get("tree") and not params.get("allow_without_state"):
        raise PecError(
            f"a cópia {got['archive']} não traz o estado da coleção (livro de lotes, registros): feita antes de a "
            "cópia diária levá-lo. Reconstruir sem ele faria a próxima exportação semanal reenviar lotes. Nada foi "
            "alterado. Para aceitar assim mesmo: rebuild_allow_without_state: true."
        )
    if not got.get("pec_version"):
        got["pec_version"] = version_in_dump(got["dump"], params["zstd"])
    if not got.get("pec_version"):
        raise PecError(
            f"a versão do PEC da cópia {got['archive']} não foi encontrada: informe-a em rebuild_pec_version"
        )
    got["skipped"] = skipped
    got["fetched_at"] = iso(utcnow())
    write_json(os.path.join(work, FETCHED), got)
    for entry in skipped:
        for suffix in (".pgdump.zst", ".pgdump.zst.part", ".estado.tar"):
            unlink_quiet(os.path.join(work, entry["archive"] + suffix))
        shutil.rmtree(os.path.join(work, entry["archive"] + ".estado"), ignore_errors=True)
    return got


def _state_file(tree_manifest, name):
    """The path a file of the state directory had on the old server (from the copy's recorded roots)."""
    root = (tree_manifest.get("roots") or {}).get("state") or _paths.STATE_DIR
    return os.path.join(root, name)


def _proof_file(work, name, proof):
    path = os.path.join(work, name + ".proof.json")
    write_json(path, proof)
    return path


def _tree_from_tar(tar_path, work, name):
    """The state tree of an exported tar, or (None, None) when the archive holds none (made before the copy took
    the state)."""
    target = os.path.join(work, name + ".estado")
    shutil.rmtree(target, ignore_errors=True)
    with open(tar_path, "rb") as handle:
        if not handle.read(512).strip(b"\0"):
            return None, None
    with open(tar_path, "rb") as handle:
        tree = cs.extract_tar(handle, target)
    manifest, backup_manifest = cs.read_tree(tree)
    return tree, (manifest, backup_manifest)


def fetch_one_borg(repo, name, work, zstd):
    """One archive into ``work``: the dump as ``<name>.pgdump.zst`` (+ .sha256), the state tree. Raises PecError
    when borg cannot give it whole (a damaged or missing chunk: borg authenticates each one)."""
    try:
        comment = json.loads(repo.archive_info(name).get("comment") or "{}")
    except (BorgError, ValueError) as exc:
        raise PecError(f"{name}: its description could not be read ({exc})") from exc
    dump = os.path.join(work, name + ".pgdump.zst")
    part = dump + ".part"
    rc, zrc, err = repo.extract_to(name, [zstd, "-q", "-3", "-T0", "-f", "-o", part], None)
    if rc != 0 or zrc != 0:
        unlink_quiet(part)
        raise PecError(
            f"{name} não pôde ser lido inteiro do repositório (borg rc={rc}, zstd rc={zrc}): {borg_said(err)}"
        )
    os.replace(part, dump)
    digest = sha256_file(dump)
    with open(dump + ".sha256", "w", encoding="utf-8") as handle:
        handle.write(sidecar_text(digest, os.path.basename(dump)))
    tar_path = os.path.join(work, name + ".estado.tar")
    try:
        repo.export_tar(name, tar_path, [cs.TREE])
        tree, read = _tree_from_tar(tar_path, work, name)
    except BorgError as exc:
        raise PecError(f"{name}: o estado da coleção não pôde ser lido ({exc.msg})") from exc
    finally:
        unlink_quiet(tar_path)
    tree_manifest, backup_manifest = read or (None, None)
    proof = proof_from(comment, backup_manifest)
    return {
        "archive": name,
        "created_at": proof["created_at"],
        "dump": dump,
        "dump_sha256": digest,
        "tree": tree,
        "tree_manifest": tree_manifest,
        "state_files": len((tree_manifest or {}).get("files") or []),
        "pec_version": normalize_version(proof["pec_version"]) if proof["pec_version"] else None,
        "proof": _proof_file(work, name, proof),
        "proof_source": proof["source"],
    }


def fetch_borg(params, repo, prefix, check_mode=False):
    """The newest readable archive of this UBS (or of the chosen day) into ``params["work_dir"]``. Returns the fetch
    record ({archive, created_at, dump, dump_sha256, tree, pec_version, proof, skipped[], changed})."""
    work = params["work_dir"]
    repository_id, names = open_repository(repo, prefix)
    chosen = candidates(names, prefix, params.get("label") or "diario", params.get("archive_date"))
    previous = _previous_fetch(work)
    if previous and previous["archive"] in chosen and not check_mode:
        return dict(previous, changed=False)
    if check_mode:
        return {"archive": chosen[0], "candidates": chosen[:5], "changed": True, "repository_id": repository_id}
    os.makedirs(work, mode=0o700, exist_ok=True)
    skipped = []
    for name in chosen:
        try:
            got = fetch_one_borg(repo, name, work, params["zstd"])
        except PecError as exc:
            skipped.append({"archive": name, "error": exc.msg})
            continue
        got = _finish_fetch(work, got, params, skipped, repository_id)
        return dict(got, changed=True)
    raise PecError(
        "nenhuma cópia desta UBS pôde ser lida inteira do repositório: "
        + "; ".join(f"{s['archive']}: {s['error']}" for s in skipped[:5])
        + ". Rode borg check no servidor de backup."
    )


def _verify_share_file(path):
    """sha256 of a file on the share against its .sha256 sidecar; raises PecError when they differ or it has
    none."""
    sidecar = path + ".sha256"
    try:
        with open(sidecar, encoding="utf-8") as handle:
            expected = handle.read().split()[0].lower()
    except (OSError, IndexError) as exc:
        raise PecError(f"{os.path.basename(path)} has no readable .sha256 beside it") from exc
    actual = sha256_file(path)
    if actual != expected:
        raise PecError(f"{os.path.basename(path)} is damaged: sha256 {actual}, {expected} recorded beside it")


def _copy_in(path, dest, identity):
    """A copy of ``path`` at ``dest`` (decrypted with the age identity file when it ends in .age)."""
    part = dest + ".part"
    if path.endswith(".age"):
        if not identity:
            raise PecError(f"{os.path.basename(path)} is age-encrypted: give rebuild_age_identity (IT's private key)")
        proc = Runner().run(["age", "-d", "-i", identity, "-o", part, path], timeout=None)
        if proc.rc != 0:
            unlink_quiet(part)
            said = proc.why() if proc.rc is None else proc.stderr.strip()
            raise PecError(f"age could not decrypt {os.path.basename(path)}: {said}")
    else:
        shutil.copyfile(path, part)
    os.chmod(part, 0o600)
    os.replace(part, dest)


def share_candidates(share, label):
    """{stem: path} of this collection's archives on the share (plain or .age) of ``label``."""
    found = {}
    for name in os.listdir(share) if os.path.isdir(share) else ():
        match = _SHARE_NAME.match(name)
        if match and match.group("label") == label and name in (match.group(0), match.group(0) + ".age"):
            found[match.group("stem")] = os.path.join(share, name)
    return found


def fetch_one_share(path, stem, work, zstd, identity):
    _verify_share_file(path)
    dump = os.path.join(work, stem + ".pgdump.zst")
    _copy_in(path, dump, identity)
    digest = sha256_file(dump)
    with open(dump + ".sha256", "w", encoding="utf-8") as handle:
        handle.write(sidecar_text(digest, os.path.basename(dump)))
    tree, tree_manifest, backup_manifest = None, None, None
    base = os.path.join(os.path.dirname(path), stem + cs.SUFFIX)
    state = base + ".age" if path.endswith(".age") else base
    if os.path.exists(state):
        _verify_share_file(state)
        local = os.path.join(work, stem + cs.SUFFIX)
        _copy_in(state, local, identity)
        target = os.path.join(work, stem + ".estado")
        shutil.rmtree(target, ignore_errors=True)
        tree = cs.extract_file(local, zstd, target)
        unlink_quiet(local)
        tree_manifest, backup_manifest = cs.read_tree(tree)
    if backup_manifest and backup_manifest.get("sha256") and backup_manifest["sha256"] != digest:
        raise PecError(f"{stem}: the dump is not the one its manifest verified (sha256 {digest})")
    proof = proof_from({"sha256": digest}, backup_manifest)
    return {
        "archive": stem,
        "created_at": proof["created_at"],
        "dump": dump,
        "dump_sha256": digest,
        "tree": tree,
        "tree_manifest": tree_manifest,
        "state_files": len((tree_manifest or {}).get("files") or []),
        "pec_version": normalize_version(proof["pec_version"]) if proof["pec_version"] else None,
        "proof": _proof_file(work, stem, proof),
        "proof_source": proof["source"] if backup_manifest else "none",
    }


def fetch_share(params, check_mode=False):
    """Like fetch_borg, from the plain copies of the daily job (method mount) on a share mounted on the target."""
    work = params["work_dir"]
    share = params["share_dir"]
    label = params.get("label") or "diario"
    found = share_candidates(share, label)
    if not found:
        raise PecError(
            f"no backup of this UBS ({label}) in {share}: mount the share that receives its daily copy and point "
            "rebuild_share_dir at it"
        )
    by_stamp = {stamp_of(stem): stem for stem in found}
    names = [f"x-{label}-{s}" for s in by_stamp]
    chosen = [by_stamp[stamp(n)] for n in candidates(names, "x-", label, params.get("archive_date"))]
    previous = _previous_fetch(work)
    if previous and previous["archive"] in chosen and not check_mode:
        return dict(previous, changed=False)
    if check_mode:
        return {"archive": chosen[0], "candidates": chosen[:5], "changed": True}
    os.makedirs(work, mode=0o700, exist_ok=True)
    skipped = []
    for stem in chosen:
        try:
            got = fetch_one_share(found[stem], stem, work, params["zstd"], params.get("age_identity"))
        except PecError as exc:
            skipped.append({"archive": stem, "error": exc.msg})
            continue
        return dict(_finish_fetch(work, got, params, skipped), changed=True)
    raise PecError(
        "nenhuma cópia desta UBS no compartilhamento pôde ser lida inteira: "
        + "; ".join(f"{s['archive']}: {s['error']}" for s in skipped[:5])
    )


def stamp_of(stem):
    return _SHARE_NAME.match(stem + ".pgdump.zst").group("ts")


# ----------------------------------------------------------------------------------------------- the installer
def read_sums(path):
    """{relative path: sha256} of a SHA256SUMS file."""
    sums = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            parts = line.strip().split(None, 1)
            if len(parts) == 2 and re.fullmatch(r"[0-9a-fA-F]{64}", parts[0]):
                sums[parts[1].lstrip("*").strip()] = parts[0].lower()
    return sums


def installer(directory, version, name_pattern, sha256=None, sums_name="SHA256SUMS"):
    """The installer of ``version`` in IT's share: {path, sha256, expected, matches}; the expected checksum is
    ``sha256`` or the share's SHA256SUMS line of that file. Raises PecError naming what is missing."""
    name = name_pattern.format(version=version)
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        raise PecError(
            f"o instalador {name} (a versão {version} que o backup registra) não está em {directory}: copie-o do "
            "compartilhamento da CTINF (ou informe rebuild_installer_dir) e rode de novo"
        )
    expected = (sha256 or "").strip().lower() or None
    if not expected:
        sums = os.path.join(directory, sums_name)
        if os.path.isfile(sums):
            expected = read_sums(sums).get(name)
    if not expected or not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise PecError(
            f"não há SHA-256 para {name}: nem rebuild_installer_sha256 nem uma linha dele em "
            f"{os.path.join(directory, sums_name)}; o instalador nunca roda sem conferir o checksum"
        )
    actual = sha256_file(path)
    if actual != expected:
        raise PecError(
            f"o instalador {path} tem SHA-256 {actual}, não o {expected} publicado: arquivo corrompido ou de outra "
            "versão; copie-o de novo do compartilhamento da CTINF"
        )
    return {"path": path, "sha256": actual, "expected": expected, "matches": True}


# ------------------------------------------------------------------------------------------ restore and prove
def prove(client, dbname, proof):
    """{tables, rows, counts_compared, hashes_compared, hash_tables, count_mismatches, hash_mismatches} of the
    database ``dbname`` against what the backup recorded."""
    restored = row_counts(client, dbname=dbname)
    expected_counts = proof.get("row_counts")
    count_mismatches = compare_counts(expected_counts, set(proof.get("changed_during_dump") or []), restored)
    hashes = proof.get("row_hashes") or {}
    hash_mismatches = {}
    if hashes:
        hashed = table_hashes(client, dbname, sorted(hashes), proof.get("row_hash_encoding"), proof.get("db_timezone"))
        hash_mismatches = compare_hashes(hashes, hashed)
    return {
        "tables": len(restored),
        "rows": sum(restored.values()),
        "counts_compared": expected_counts is not None,
        "hashes_compared": bool(hashes),
        "hash_tables": len(hashes),
        "count_mismatches": count_mismatches,
        "hash_mismatches": sorted(hash_mismatches),
    }


def restore_and_prove(params, client, conn, fetched, check_mode=False, now=None):
    """The fetched dump into ``<db>_rebuild``, proved against the backup, then swapped into place (the database it
    replaces is kept as ``<db>_pre_rebuild_<UTC>`` with ``keep_previous``). Raises PecError (the live database
    untouched) when the proof fails."""
    dump = fetched["dump"]
    if sha256_file(dump) != fetched["dump_sha256"]:
        raise PecError(f"{dump} changed on disk since it was fetched: run the rebuild again (it fetches it anew)")
    proof = read_json(fetched["proof"], "rebuild proof") or {}
    target = conn["name"]
    maint = params.get("maintenance_db") or "postgres"
    scratch = f"{target}_rebuild"
    previous = f"{target}_pre_rebuild_{(now or utcnow()).strftime('%Y%m%d%H%M%S')}"
    result = {"database": target, "scratch_db": scratch, "previous_db": None, "archive": fetched["archive"]}
    if check_mode:
        result["would"] = f"restore {fetched['archive']} into {scratch}, prove it, then put it in place of {target}"
        return result
    if database_exists(client, scratch, maint):
        drop_database(client, scratch, maint)
    like = target if database_exists(client, target, maint) else "template0"
    create_database_like(client, scratch, like, maint)
    try:
        restore_into(client, dump, "zstd", scratch, zstd=params["zstd"])
        outcome = prove(client, scratch, proof)
    except BaseException:
        drop_database(client, scratch, maint)
        raise
    result["proof"] = outcome
    result["proof_source"] = proof.get("source")
    if outcome["count_mismatches"] or outcome["hash_mismatches"]:
        drop_database(client, scratch, maint)
        differ = sorted(outcome["count_mismatches"]) + outcome["hash_mismatches"]
        raise PecError(
            f"a cópia restaurada de {fetched['archive']} não confere com o backup verificado "
            f"({len(differ)} tabela(s): {', '.join(differ[:10])}); o banco atual não foi trocado. Rode de novo com "
            "rebuild_archive_date de um dia anterior e avise o NTINF.",
            proof=outcome,
        )
    if not outcome["tables"]:
        drop_database(client, scratch, maint)
        raise PecError(f"{fetched['archive']} restored no table; the live database was not replaced")
    result["previous_db"] = swap_in(client, target, scratch, previous, maint, params.get("keep_previous"))
    return result


# ------------------------------------------------------------------------------------------------- the link
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<host>\[[^\]]+\]|[^/:?#]+)(?P<rest>.*)$")


def new_link(old, host, explicit=None, port=8080):
    """The installation link the new server should have: ``explicit``, else ``old`` with its host replaced by
    ``host`` (scheme, port and path kept), else ``http://<host>:<port>``."""
    if explicit:
        return explicit
    match = _URL.match(old or "")
    if match:
        return f"{match.group('scheme')}://{host}{match.group('rest')}"
    return f"http://{host}:{port}"


# ---------------------------------------------------------------------------------------- the state put back
def put_state_back(tree, where, skip=DEFAULT_STATE_SKIP, check_mode=False):
    """The collection's files of the copy where they were (collection_state.plan_restore/apply_restore): {created,
    replaced, same, skipped} and the old server's own rebuild history, if it had one."""
    manifest, _backup = cs.read_tree(tree)
    plan = cs.plan_restore(tree, manifest, where, skip=tuple(skip))
    done = cs.apply_restore(plan, check_mode=check_mode)
    history = []
    for item in plan:
        if os.path.basename(item["target"]) == f"sesdf_esus_{CONCERN}.fact":
            try:
                old = read_json(item["source"], "rebuild record of the old server") or {}
            except PecError:
                old = {}
            data = old.get("data") or {}
            history = list(data.get("rebuilds") or [])
    done["copy_created_at"] = manifest.get("created_at")
    done["copy_host"] = manifest.get("host")
    done["old_rebuilds"] = history
    return done


# ------------------------------------------------------------------------------------------------ the record
def next_record(previous, step=None, step_data=None, finish=None, old_rebuilds=None, now=None):
    """The record's data after this call: ``steps`` (each step done, when, and what it found), and, with ``finish``
    (the summary of a rebuild that ended), ``rebuilds`` (newest first, the old server's included)."""
    data = json.loads(json.dumps(previous or {}))
    data.setdefault("steps", {})
    stamp_now = iso(now or utcnow())
    if step:
        data["steps"][step] = dict(step_data or {}, state="done", at=stamp_now)
    if old_rebuilds:
        known = {r.get("at") for r in data.get("rebuilds") or []}
        data["rebuilds"] = (data.get("rebuilds") or []) + [r for r in old_rebuilds if r.get("at") not in known]
    if finish is not None:
        entry = dict(summary(data["steps"]), **finish, at=stamp_now)
        data["rebuilds"] = [entry] + [r for r in data.get("rebuilds") or [] if r.get("at") != entry["at"]]
        data["last"] = entry
    if "rebuilds" in data:
        data["rebuilds"] = sorted(data["rebuilds"], key=lambda r: r.get("at") or "", reverse=True)[:HISTORY]
    return data


def summary(steps):
    """One rebuild in the history, from what its steps recorded (no secret)."""
    fetched = steps.get("fetch") or {}
    restored = steps.get("restore") or {}
    linked = steps.get("link") or {}
    put = steps.get("state") or {}
    proof = restored.get("proof") or {}
    return {
        "archive": fetched.get("archive"),
        "backup_created_at": fetched.get("created_at"),
        "source": fetched.get("source"),
        "pec_version": (steps.get("install") or {}).get("version") or fetched.get("pec_version"),
        "passed_over": [s.get("archive") for s in fetched.get("skipped") or []],
        "proof": {k: proof.get(k) for k in ("tables", "rows", "hashes_compared", "hash_tables", "source")},
        "previous_db": restored.get("previous_db"),
        "link": {k: linked.get(k) for k in ("supported", "wanted", "manual_step")},
        "state_files": {k: put.get(k) for k in ("created", "replaced", "same")},
        "old_host": put.get("old_host"),
        "rekey": steps.get("rekey") or {},
    }


def done_steps(record_data):
    return sorted(k for k, v in ((record_data or {}).get("steps") or {}).items() if (v or {}).get("state") == "done")
