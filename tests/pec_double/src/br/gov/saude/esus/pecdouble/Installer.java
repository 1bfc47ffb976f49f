package br.gov.saude.esus.pecdouble;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.nio.file.attribute.UserPrincipalLookupService;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * TEST DOUBLE of the PEC e-SUS APS Linux installer (eSUS-AB-PEC-VERSION-Linux64.jar).
 * Install mode when no e-SUS-PEC.service unit exists, update mode otherwise.
 */
public final class Installer {
    static final Path BASE = Paths.get("/opt/e-SUS");
    static final Path WEB = BASE.resolve("webserver");
    static final Path CONFIG = WEB.resolve("config");
    static final Path DB_HOME = BASE.resolve("database/postgresql-9.6.13-1-linux-x64");
    static final Path DB_BIN = DB_HOME.resolve("bin");
    static final Path DB_DATA = DB_HOME.resolve("data");
    static final Path LOG = BASE.resolve("log/instalador.log");
    static final Path PEC_CONFIG = Paths.get("/etc/pec.config");
    static final String PEC_UNIT = "e-SUS-PEC.service";
    static final String DB_UNIT = "e-SUS-AB-PostgreSQL.service";
    static final String EMBEDDED_URL = "jdbc:postgresql://localhost:5433/esus";
    static final int EXIT_DB_ERROR = 3;

    private boolean console, cont, backup, treinamento;
    private String url, username, password;
    private final String version = Common.version();

    public static void main(String[] args) {
        Common.utf8Console();
        Installer i = new Installer();
        int rc;
        try {
            rc = i.runInstaller(args);
        } catch (Fatal f) {
            i.say("ERRO: " + f.getMessage());
            rc = f.code;
        } catch (Exception e) {
            i.say("ERRO inesperado: " + e);
            rc = 1;
        }
        System.exit(rc);
    }

    static final class Fatal extends RuntimeException {
        final int code;
        Fatal(int code, String msg) { super(msg); this.code = code; }
    }

    static void usage() {
        System.out.println("Uso: java -jar eSUS-AB-PEC-" + Common.version() + "-Linux64.jar [opções]\n"
            + "  -console                 instalação em modo texto\n"
            + "  -continue                não pede confirmação\n"
            + "  -url=<jdbc> -username=<usuário> -password=<senha>\n"
            + "                           usa um banco de dados PostgreSQL externo em vez do embarcado\n"
            + "  -backup                  faz backup do banco de dados antes de atualizar\n"
            + "  -treinamento             instalação de treinamento\n"
            + "  -help                    mostra esta ajuda\n"
            + "(DUBLÊ DE TESTE do instalador do PEC e-SUS APS)");
    }

    int runInstaller(String[] args) throws Exception {
        for (String a : args) {
            if (a.equals("-console")) console = true;
            else if (a.equals("-continue")) cont = true;
            else if (a.equals("-backup")) backup = true;
            else if (a.equals("-treinamento")) treinamento = true;
            else if (a.equals("-help") || a.equals("--help")) { usage(); return 0; }
            else if (a.startsWith("-url=")) url = a.substring(5);
            else if (a.startsWith("-username=")) username = a.substring(10);
            else if (a.startsWith("-password=")) password = a.substring(10);
            else { System.out.println("Opção desconhecida: " + a); usage(); return 2; }
        }
        if (!isRoot()) throw new Fatal(1, "Esta ferramenta necessita executar com privilégios de administrador.");
        if (!"systemd".equals(readTrim(Paths.get("/proc/1/comm"))))
            throw new Fatal(1, "Esta ferramenta necessita do systemd como gerenciador de serviços (PID 1).");
        String arch = System.getProperty("os.arch");
        if (!arch.equals("amd64") && !arch.equals("x86_64"))
            throw new Fatal(1, "Arquitetura não suportada (" + arch + "): é necessário Linux 64 bits (x86_64).");
        if (!console) say("Modo gráfico indisponível neste servidor; usando o modo console.");
        say("e-SUS APS - Prontuário Eletrônico do Cidadão - instalador versão " + version);
        return unitExists(PEC_UNIT) ? update() : install();
    }

    // ---------------------------------------------------------------------------------------- install

    int install() throws Exception {
        boolean external = url != null;
        if (external && (username == null || password == null))
            throw new Fatal(2, "Com -url é preciso informar também -username e -password.");
        say("Será feita uma nova instalação do PEC versão " + version + " em " + BASE
            + (external ? " usando o banco de dados externo " + url : " com banco de dados embarcado") + ".");
        confirm();
        for (Path d : new Path[] {WEB.resolve("logs"), CONFIG, WEB.resolve("chaves"), WEB.resolve("lib"), LOG.getParent()})
            Files.createDirectories(d);
        log("Instalação da versão " + version + " iniciada");
        installWebFiles();

        String dbUrl, dbUser, dbPass, roPass = null;
        if (external) {
            dbUrl = url; dbUser = username; dbPass = password;
        } else {
            dbUrl = EMBEDDED_URL; dbUser = "postgres"; dbPass = Common.randomPassword(20); roPass = Common.randomPassword(20);
            setUpEmbeddedDatabase(dbPass);
        }
        if (!external) {
            try (Connection c = waitForDatabase(jdbcUrlWithDb(dbUrl, "postgres"), dbUser, dbPass, 90)) {
                step("Criando o banco de dados esus e o usuário somente leitura esus_leitura");
                try (Statement s = c.createStatement()) {
                    // initdb hashed the superuser password with its own default (scram): hash it again as configured.
                    s.execute("SET password_encryption = '" + authMethod() + "'");
                    s.execute("ALTER ROLE postgres PASSWORD '" + dbPass + "'");
                    s.execute("CREATE DATABASE esus ENCODING 'UTF8' TEMPLATE template0");
                    s.execute("CREATE ROLE esus_leitura LOGIN PASSWORD '" + roPass + "'");
                }
            }
        }
        try (Connection c = waitForDatabase(dbUrl, dbUser, dbPass, 90)) {
            step("Criando as tabelas do banco de dados (versão 4.2.8)");
            c.setAutoCommit(false);
            try (Statement s = c.createStatement()) {
                s.execute(resource("/sql/baseline-4.2.8.sql"));
                s.executeUpdate("UPDATE tb_config_sistema SET ds_texto = '" + treinamento + "' WHERE co_config_sistema = 'TREINAMENTO'");
            }
            createInstallationAdmin(c);
            c.commit();
            c.setAutoCommit(true);
            migrate(c, "4.2.8");
            if (!external) grantReadOnly(c);
        }
        writeApplicationProperties(dbUrl, dbUser, dbPass);
        writeCredentials(dbUrl, dbUser, dbPass, external ? null : roPass);
        writePecConfig(version, dbUrl, treinamento);
        writePecUnit(!external);
        systemctl("daemon-reload");
        systemctl("enable", "--now", PEC_UNIT);
        say("Instalação concluída: PEC versão " + version + " em http://localhost:8080/esus/");
        log("Instalação concluída");
        return 0;
    }

    /** The 9.6 client tools the real PEC ships (PostgreSQL 9.6.13): its bin/ links each client tool to the 9.6 shim
     * (tests/pec_double/pg96/pg96-shim, 9.6's options and `pg_restore -f -` semantics over the newer binaries) and
     * every other program (postgres, initdb, pg_ctl, ...) to the real one. */
    static final List<String> PG96_CLIENT_TOOLS = List.of("pg_restore", "pg_dump", "pg_dumpall", "psql", "createdb",
        "dropdb", "vacuumdb", "reindexdb", "pg_isready");

    private void linkBinaries(Path realBin) throws Exception {
        Path shim = Paths.get(System.getenv().getOrDefault("PEC_DOUBLE_PG96_SHIM", "/usr/local/lib/pec-double/pg96-shim"));
        if (!Files.isExecutable(shim))
            throw new Fatal(1, "Ferramentas do PostgreSQL 9.6 do dublê não encontradas: " + shim + " (reconstrua a imagem do laboratório).");
        if (Files.isSymbolicLink(DB_BIN)) Files.delete(DB_BIN);
        if (Files.isDirectory(DB_BIN)) {
            try (var old = Files.list(DB_BIN)) { for (Path p : old.collect(Collectors.toList())) Files.delete(p); }
        } else {
            Files.createDirectories(DB_BIN);
        }
        try (var real = Files.list(realBin)) {
            for (Path p : real.collect(Collectors.toList())) {
                String name = p.getFileName().toString();
                Files.createSymbolicLink(DB_BIN.resolve(name), PG96_CLIENT_TOOLS.contains(name) ? shim : p);
            }
        }
    }

    private void setUpEmbeddedDatabase(String superPassword) throws Exception {
        step("Preparando o banco de dados embarcado em " + DB_HOME);
        Files.createDirectories(DB_HOME);
        Path newest;
        try (var s = Files.list(Paths.get("/usr/lib/postgresql"))) {
            newest = s.filter(p -> Files.isDirectory(p.resolve("bin")) && p.getFileName().toString().matches("\\d+(\\.\\d+)?"))
                .max((a, b) -> Common.compareVersions(a.getFileName().toString(), b.getFileName().toString()))
                .orElseThrow(() -> new Fatal(1, "PostgreSQL não encontrado em /usr/lib/postgresql"));
        }
        linkBinaries(newest.resolve("bin"));
        if (run("id", "-u", "postgres") != 0 && run("useradd", "--system", "--home-dir", DB_HOME.toString(),
                "--shell", "/bin/bash", "postgres") != 0)
            throw new Fatal(1, "Não foi possível criar o usuário do sistema postgres.");
        if (Files.exists(DB_DATA) && Files.list(DB_DATA).findAny().isPresent())
            throw new Fatal(1, "O diretório " + DB_DATA + " já existe e não está vazio.");
        Files.createDirectories(DB_DATA);
        chown(DB_DATA, "postgres");
        Files.setPosixFilePermissions(DB_DATA, PosixFilePermissions.fromString("rwx------"));
        Path pw = Files.createTempFile("pec-initdb", ".pw", PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        try {
            Files.writeString(pw, superPassword + "\n");
            chown(pw, "postgres");
            step("Inicializando o banco de dados (initdb)");
            if (run("runuser", "-u", "postgres", "--", DB_BIN.resolve("initdb").toString(), "-D", DB_DATA.toString(),
                    "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8", "--auth-local=peer", "--auth-host=" + authMethod(),
                    "--pwfile=" + pw) != 0)
                throw new Fatal(1, "Falha ao inicializar o banco de dados (initdb): veja " + LOG);
        } finally {
            Files.deleteIfExists(pw);
        }
        Files.writeString(DB_DATA.resolve("postgresql.conf"),
            "\n# e-SUS APS PEC (dublê de teste)\nunix_socket_directories = '/var/run/postgresql,/tmp'\n"
            + "password_encryption = " + authMethod() + "\n", StandardOpenOption.APPEND);
        // pg_hba.conf from initdb: local all all peer; host 127.0.0.1/32 and ::1/128 scram-sha-256.
        Files.writeString(Paths.get("/lib/systemd/system", DB_UNIT),
            "[Unit]\nDescription=e-SUS AB PostgreSQL (banco de dados do PEC e-SUS APS)\nAfter=network.target\n\n"
            + "[Service]\nType=notify\nUser=postgres\nGroup=postgres\n"
            + "ExecStart=" + DB_BIN + "/postgres -D " + DB_DATA + " -p 5433 -c listen_addresses=127.0.0.1\n"
            + "ExecReload=/bin/kill -HUP $MAINPID\nKillMode=mixed\nKillSignal=SIGINT\nTimeoutSec=300\n"
            + "RuntimeDirectory=postgresql\nRuntimeDirectoryPreserve=yes\n\n[Install]\nWantedBy=multi-user.target\n");
        systemctl("daemon-reload");
        step("Iniciando o serviço " + DB_UNIT);
        systemctl("enable", "--now", DB_UNIT);
    }

    private void createInstallationAdmin(Connection c) throws SQLException {
        String cpf = envOr("PEC_DOUBLE_ADMIN_CPF", "00000000191");
        String pw = envOr("PEC_DOUBLE_ADMIN_PASSWORD", Common.randomPassword(24));
        step("Cadastrando o administrador da instalação (CPF " + cpf.substring(0, 3) + ".***.***-" + cpf.substring(9) + ")");
        try (PreparedStatement u = c.prepareStatement(
                "WITH u AS (INSERT INTO tb_usuario (ds_login, ds_senha, st_forcar_troca_senha) VALUES (?, ?, true) RETURNING co_seq_usuario),"
                + " p AS (INSERT INTO tb_prof (co_usuario, no_profissional, nu_cpf) SELECT co_seq_usuario, 'Administrador da Instalação', ? FROM u RETURNING co_seq_prof),"
                + " a AS (INSERT INTO tb_ator_papel (co_prof, tp_ator_papel) SELECT co_seq_prof, 'ADMINISTRADOR_GERAL' FROM p RETURNING co_seq_ator_papel),"
                + " g AS (INSERT INTO tb_adm_geral (co_ator_papel) SELECT co_seq_ator_papel FROM a)"
                + " INSERT INTO rl_ator_papel_perfil (co_ator_papel, co_perfil)"
                + " SELECT a.co_seq_ator_papel, pf.co_seq_perfil FROM a, tb_perfil pf WHERE pf.tp_perfil = 'ADMINISTRADOR_GERAL'")) {
            u.setString(1, cpf);
            u.setString(2, Common.hashPassword(pw));
            u.setString(3, cpf);
            u.executeUpdate();
        }
    }

    /** md5 like the real 9.6.13 in the strict variant; scram-sha-256 in the full one (what the lab always had). */
    static String authMethod() { return Common.strict() ? "md5" : "scram-sha-256"; }

    /** Strict variant: tb_config_sistema as real servers show it (pec-facts.md, third review), after every migration:
     * none of the double's invented keys; the columns ds_config_sistema and ds_inteiro; TIPOINSTALACAO 'PRONTUARIO';
     * TREINAMENTO in ds_inteiro (0/1, ds_texto NULL); LINKINSTALACAO and NOMEINSTALACAO present. */
    private static void dropInventedKeys(Connection c) throws SQLException {
        if (!Common.strict()) return;
        try (PreparedStatement d = c.prepareStatement("DELETE FROM tb_config_sistema WHERE co_config_sistema = ?")) {
            for (String k : Common.INVENTED_KEYS) { d.setString(1, k); d.executeUpdate(); }
        }
        try (Statement s = c.createStatement()) {
            s.execute("ALTER TABLE tb_config_sistema ADD COLUMN IF NOT EXISTS ds_config_sistema varchar(255),"
                + " ADD COLUMN IF NOT EXISTS ds_inteiro integer");
            s.executeUpdate("UPDATE tb_config_sistema SET ds_texto = 'PRONTUARIO' WHERE co_config_sistema = 'TIPOINSTALACAO'"
                + " AND ds_texto IS DISTINCT FROM 'PRONTUARIO'");
            s.executeUpdate("UPDATE tb_config_sistema SET ds_inteiro = CASE WHEN ds_texto = 'true' THEN 1 ELSE 0 END,"
                + " ds_texto = NULL WHERE co_config_sistema = 'TREINAMENTO' AND ds_texto IS NOT NULL");
            s.executeUpdate("INSERT INTO tb_config_sistema (co_config_sistema, ds_texto) SELECT 'LINKINSTALACAO',"
                + " 'http://localhost:8080' WHERE NOT EXISTS (SELECT 1 FROM tb_config_sistema WHERE co_config_sistema = 'LINKINSTALACAO')");
            s.executeUpdate("INSERT INTO tb_config_sistema (co_config_sistema, ds_texto) SELECT 'NOMEINSTALACAO',"
                + " 'Instalação do dublê' WHERE NOT EXISTS (SELECT 1 FROM tb_config_sistema WHERE co_config_sistema = 'NOMEINSTALACAO')");
        }
    }

    private void grantReadOnly(Connection c) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute("GRANT CONNECT ON DATABASE esus TO esus_leitura");
            s.execute("GRANT USAGE ON SCHEMA public TO esus_leitura");
            s.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO esus_leitura");
            s.execute("ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT SELECT ON TABLES TO esus_leitura");
        }
    }

    // ----------------------------------------------------------------------------------------- update

    int update() throws Exception {
        if (!Files.exists(PEC_CONFIG)) throw new Fatal(1, "Instalação existente sem " + PEC_CONFIG + ": não é possível atualizar.");
        String json = Files.readString(PEC_CONFIG);
        String installed = Common.jsonValue(json, "version");
        if (installed == null) throw new Fatal(1, "Versão instalada não encontrada em " + PEC_CONFIG + ".");
        int cmp = Common.compareVersions(installed, version);
        if (cmp == 0) {
            say("O sistema já está atualizado (versão " + version + "). Nada a fazer.");
            return 0;
        }
        if (cmp > 0)
            throw new Fatal(1, "A versão instalada (" + installed + ") é mais recente que a deste instalador (" + version
                + "). Não é possível instalar uma versão anterior.");
        say("Será feita a atualização do PEC da versão " + installed + " para a versão " + version + ".");
        confirm();
        Files.createDirectories(LOG.getParent());
        log("Atualização de " + installed + " para " + version + " iniciada");
        step("Parando o serviço " + PEC_UNIT);
        systemctl("stop", PEC_UNIT);
        if (unitExists(DB_UNIT)) {
            step("Garantindo que o serviço " + DB_UNIT + " está em execução");
            systemctl("start", DB_UNIT);
        }
        Properties app = Common.loadProperties(CONFIG.resolve("application.properties"));
        String dbUrl = url != null ? url : app.getProperty("spring.datasource.url");
        String dbUser = username != null ? username : app.getProperty("spring.datasource.username");
        String dbPass = password != null ? password : app.getProperty("spring.datasource.password");
        try (Connection c = waitForDatabase(dbUrl, dbUser, dbPass, 90)) {
            String dbVersion = dbVersion(c);
            if (backup) backup(dbUrl, dbUser, dbPass, dbVersion);
            installWebFiles();
            migrate(c, dbVersion);
            if (unitExists(DB_UNIT)) {
                try (Statement s = c.createStatement()) {
                    s.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO esus_leitura");
                } catch (SQLException e) {
                    log("Aviso: permissões de esus_leitura não atualizadas: " + e.getMessage());
                }
            }
        }
        writePecConfig(version, Common.jsonValue(json, "databaseUrl") != null ? Common.jsonValue(json, "databaseUrl") : dbUrl,
            Boolean.parseBoolean(Common.jsonValue(json, "treinamento")));
        writePecUnit(unitExists(DB_UNIT));
        systemctl("daemon-reload");
        step("Iniciando o serviço " + PEC_UNIT);
        systemctl("start", PEC_UNIT);
        say("Atualização concluída: PEC versão " + version + ".");
        log("Atualização concluída");
        return 0;
    }

    private void backup(String dbUrl, String user, String pass, String dbVersion) throws Exception {
        Matcher m = Pattern.compile("jdbc:postgresql://([^:/]+)(?::(\\d+))?/([^?]+)").matcher(dbUrl);
        if (!m.find()) throw new Fatal(1, "URL de banco não suportada para backup: " + dbUrl);
        Path dir = BASE.resolve("backup");
        Files.createDirectories(dir);
        Path file = dir.resolve("esus-" + dbVersion + "-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")) + ".backup");
        step("Fazendo backup do banco de dados em " + file);
        Path pgpass = Files.createTempFile("pec-backup", ".pgpass", PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        try {
            Files.writeString(pgpass, "*:*:*:" + user.replace(":", "\\:") + ":" + pass.replace("\\", "\\\\").replace(":", "\\:") + "\n");
            String pgDump = Files.isExecutable(DB_BIN.resolve("pg_dump")) ? DB_BIN.resolve("pg_dump").toString() : "pg_dump";
            ProcessBuilder pb = new ProcessBuilder(pgDump, "--host=" + m.group(1), "--port=" + (m.group(2) == null ? "5432" : m.group(2)),
                "--username=" + user, "--format=custom", "--compress=9", "--blobs", "--no-owner", "--no-privileges",
                "--file=" + file, m.group(3));
            pb.environment().put("PGPASSFILE", pgpass.toString());
            if (run(pb) != 0) throw new Fatal(1, "Falha no backup do banco de dados: veja " + LOG);
        } finally {
            Files.deleteIfExists(pgpass);
        }
    }

    // ------------------------------------------------------------------------------------- migrations

    static String dbVersion(Connection c) throws SQLException {
        try (Statement s = c.createStatement();
             ResultSet r = s.executeQuery("SELECT ds_texto FROM tb_config_sistema WHERE co_config_sistema = 'VERSAOBANCODADOS'")) {
            if (!r.next()) throw new Fatal(1, "VERSAOBANCODADOS não encontrada em tb_config_sistema.");
            return r.getString(1);
        }
    }

    /** Applies every migration newer than {@code from} and not newer than this build, each in its own transaction. */
    private void migrate(Connection c, String from) throws Exception {
        List<String> steps = Arrays.stream(Common.build().getProperty("migrations", "").split(","))
            .map(String::trim).filter(v -> !v.isEmpty())
            .filter(v -> Common.compareVersions(v, from) > 0 && Common.compareVersions(v, version) <= 0)
            .sorted(Common::compareVersions).collect(Collectors.toList());
        for (String v : steps) {
            step("Atualizando o banco de dados para a versão " + v);
            String sql = resource("/sql/migrations/" + v + ".sql");
            try {
                if (Common.broken() && v.equals(version)) {
                    // BROKEN build: the first half runs in autocommit (no rollback possible), then an SQL error.
                    c.setAutoCommit(true);
                    try (Statement s = c.createStatement()) {
                        s.execute(sql.split("-- @@FALHA_PARCIAL@@")[0]);
                        s.execute("ALTER TABLE tb_atend_prof_inexistente ADD COLUMN co_dummy bigint");
                    }
                }
                c.setAutoCommit(false);
                try (Statement s = c.createStatement();
                     PreparedStatement u = c.prepareStatement(
                         "UPDATE tb_config_sistema SET ds_texto = ? WHERE co_config_sistema = 'VERSAOBANCODADOS'")) {
                    s.execute(sql);
                    u.setString(1, v);
                    u.executeUpdate();
                }
                c.commit();
                c.setAutoCommit(true);
            } catch (SQLException e) {
                try { if (!c.getAutoCommit()) c.rollback(); } catch (SQLException ignored) { }
                throw new Fatal(EXIT_DB_ERROR, "Erro ao atualizar o banco de dados para a versão " + v + ": " + e.getMessage());
            }
            log("Banco de dados na versão " + v);
        }
        if (!c.getAutoCommit()) c.setAutoCommit(true);
        dropInventedKeys(c);
        transmissionPerNode(c);
    }

    /** Strict variant: the transmission tables as real servers show them, per destination node (sql/strict). */
    private static void transmissionPerNode(Connection c) throws Exception {
        if (!Common.strict()) return;
        try (Statement s = c.createStatement()) {
            s.execute(resource("/sql/strict/transmissao-por-nodo.sql"));
        }
    }

    // -------------------------------------------------------------------------------- files and units

    private void installWebFiles() throws IOException {
        step("Copiando os arquivos do servidor web para " + WEB);
        for (Path d : new Path[] {WEB.resolve("logs"), CONFIG, WEB.resolve("chaves"), WEB.resolve("lib")}) Files.createDirectories(d);
        copyResource("/payload/pec-bundle.jar", WEB.resolve("pec-bundle.jar"), "rw-r--r--");
        copyResource("/payload/postgresql.jar", WEB.resolve("lib/postgresql.jar"), "rw-r--r--");
        Path sh = WEB.resolve("standalone.sh");
        Files.writeString(sh, "#!/bin/sh\n# e-SUS APS PEC (dublê de teste): inicia a aplicação\ncd " + WEB + " || exit 1\n"
            + "exec \"" + jreDirectory() + "/bin/java\" -Xms64m -Xmx256m -Dfile.encoding=UTF-8 -Dpec.home=" + WEB
            + " -jar " + WEB.resolve("pec-bundle.jar") + " \"$@\"\n");
        Files.setPosixFilePermissions(sh, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    /** 5.3+ bundles its JRE 17 under /opt/e-SUS/jre (current): the 5.x double links jre/current to the Java that runs
     * the installer (a JRE 17 in the lab) and starts the application with it; 4.x uses the system Java. */
    static final Path JRE_CURRENT = BASE.resolve("jre/current");

    private static String jreDirectory() throws IOException {
        String home = System.getProperty("java.home");
        if (!Common.v5()) return home;
        Files.createDirectories(JRE_CURRENT.getParent());
        if (!Files.exists(JRE_CURRENT, LinkOption.NOFOLLOW_LINKS)) Files.createSymbolicLink(JRE_CURRENT, Paths.get(home));
        return JRE_CURRENT.toString();
    }

    private void writePecUnit(boolean embeddedDb) throws IOException {
        String dep = embeddedDb ? "Requires=" + DB_UNIT + "\nAfter=network.target " + DB_UNIT + "\n" : "After=network.target\n";
        Files.writeString(Paths.get("/lib/systemd/system", PEC_UNIT),
            "[Unit]\nDescription=e-SUS APS PEC - Prontuário Eletrônico do Cidadão\n" + dep
            + "StartLimitIntervalSec=120\nStartLimitBurst=3\n\n"
            + "[Service]\nType=simple\nWorkingDirectory=" + WEB + "\nExecStart=" + WEB.resolve("standalone.sh") + "\n"
            + "Restart=on-failure\nRestartSec=5\nSuccessExitStatus=143\n\n[Install]\nWantedBy=multi-user.target\n");
    }

    private void writeApplicationProperties(String dbUrl, String user, String pass) throws IOException {
        Path f = CONFIG.resolve("application.properties");
        Files.writeString(f, "# e-SUS APS PEC - configuração da aplicação\n"
            + "spring.datasource.url=" + dbUrl + "\nspring.datasource.username=" + user + "\n"
            + "spring.datasource.password=" + pass + "\nserver.port=8080\n");
        Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-r--r--"));
    }

    private void writeCredentials(String dbUrl, String user, String pass, String roPass) throws IOException {
        Path f = CONFIG.resolve("credenciais.txt");
        Files.deleteIfExists(f);
        Files.createFile(f, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        StringBuilder sb = new StringBuilder("Credenciais do banco de dados do e-SUS APS PEC\n\n")
            .append("Url de conexão: ").append(dbUrl).append("\n\n")
            .append("Usuário com acesso total:\nUsuário: ").append(user).append("\nSenha: ").append(pass).append("\n");
        if (roPass != null)
            sb.append("\nUsuário somente leitura:\nUsuário: esus_leitura\nSenha: ").append(roPass).append("\n");
        Files.writeString(f, sb.toString());
        chown(f, "root");
    }

    private void writePecConfig(String v, String dbUrl, boolean tr) throws IOException {
        // root-only, as a real 5.3.19+ install needs (it may hold databasePassword): made 0600 before it is written
        if (!Files.exists(PEC_CONFIG))
            Files.createFile(PEC_CONFIG, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.setPosixFilePermissions(PEC_CONFIG, PosixFilePermissions.fromString("rw-------"));
        Files.writeString(PEC_CONFIG, "{\"success\": true, \"version\": " + Common.jsonString(v)
            + ", \"databaseUrl\": " + Common.jsonString(dbUrl)
            + ", \"jreDirectory\": " + Common.jsonString(jreDirectory())
            + ", \"installDirectory\": " + Common.jsonString(BASE.toString())
            + ", \"treinamento\": " + tr + "}\n");
    }

    // ---------------------------------------------------------------------------------------- helpers

    private Connection waitForDatabase(String dbUrl, String user, String pass, int seconds) throws Exception {
        step("Aguardando o banco de dados");
        Properties p = new Properties();
        p.setProperty("user", user);
        p.setProperty("password", pass);
        p.setProperty("connectTimeout", "5");
        SQLException last = null;
        for (long end = System.currentTimeMillis() + seconds * 1000L; System.currentTimeMillis() < end; Thread.sleep(1000)) {
            try {
                return DriverManager.getConnection(dbUrl, p);
            } catch (SQLException e) {
                last = e;
                if ("28P01".equals(e.getSQLState())) break;   // wrong password: no point waiting
            }
        }
        throw new Fatal(EXIT_DB_ERROR, "Não foi possível conectar ao banco de dados " + dbUrl + ": "
            + (last == null ? "tempo esgotado" : last.getMessage()));
    }

    static String jdbcUrlWithDb(String dbUrl, String db) {
        return dbUrl.replaceFirst("(jdbc:postgresql://[^/]+/)[^?]*", "$1" + db);
    }

    private void confirm() throws IOException {
        if (cont) return;
        System.out.print("Deseja continuar? [s/N] ");
        System.out.flush();
        String line = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)).readLine();
        if (line == null || !line.trim().equalsIgnoreCase("s")) {
            System.out.println();
            throw new Fatal(1, "Operação cancelada pelo usuário. Nada foi alterado.");
        }
    }

    private static boolean isRoot() {
        try {
            for (String l : Files.readAllLines(Paths.get("/proc/self/status")))
                if (l.startsWith("Uid:")) return l.split("\\s+")[1].equals("0");
        } catch (IOException ignored) { }
        return false;
    }

    private static boolean unitExists(String unit) {
        return Files.exists(Paths.get("/lib/systemd/system", unit)) || Files.exists(Paths.get("/etc/systemd/system", unit));
    }

    private static String readTrim(Path p) {
        try { return Files.readString(p).trim(); } catch (IOException e) { return ""; }
    }

    private static String envOr(String name, String dflt) {
        String v = System.getenv(name);
        return v == null || v.isEmpty() ? dflt : v;
    }

    private static void chown(Path p, String user) throws IOException {
        UserPrincipalLookupService l = p.getFileSystem().getUserPrincipalLookupService();
        UserPrincipal u = l.lookupPrincipalByName(user);
        GroupPrincipal g = l.lookupPrincipalByGroupName(user);
        PosixFileAttributeView v = Files.getFileAttributeView(p, PosixFileAttributeView.class, LinkOption.NOFOLLOW_LINKS);
        v.setOwner(u);
        v.setGroup(g);
    }

    private static String resource(String name) throws IOException {
        try (InputStream in = Installer.class.getResourceAsStream(name)) {
            if (in == null) throw new IOException("recurso ausente: " + name);
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    private static void copyResource(String name, Path to, String perms) throws IOException {
        try (InputStream in = Installer.class.getResourceAsStream(name)) {
            if (in == null) throw new IOException("recurso ausente: " + name);
            Path tmp = to.resolveSibling(to.getFileName() + ".tmp");
            Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
            Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString(perms));
            Files.move(tmp, to, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        }
    }

    private void systemctl(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("systemctl"));
        cmd.addAll(List.of(args));
        if (run(new ProcessBuilder(cmd)) != 0 && !args[0].equals("stop"))
            throw new Fatal(1, "Falha ao executar: " + String.join(" ", cmd) + " (veja " + LOG + " e journalctl)");
    }

    private int run(String... cmd) throws Exception {
        return run(new ProcessBuilder(cmd));
    }

    /** Runs a command (never with secrets on its argv), its output goes to the installer log only. */
    private int run(ProcessBuilder pb) throws Exception {
        pb.redirectErrorStream(true);
        log("$ " + String.join(" ", pb.command()));
        Process p = pb.start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        int rc = p.waitFor();
        if (!out.isBlank()) log(out.stripTrailing());
        if (rc != 0) log("(código de saída " + rc + ")");
        return rc;
    }

    private void step(String msg) {
        say("==> " + msg + "...");
    }

    void say(String msg) {
        System.out.println(msg);
        log(msg);
    }

    private void log(String msg) {
        if (!Files.isDirectory(LOG.getParent())) return;
        try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(LOG, StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND))) {
            for (String l : msg.split("\n"))
                w.println(LocalDateTime.now().format(DateTimeFormatter.ISO_LOCAL_DATE_TIME) + " [" + version + "] " + l);
        } catch (IOException ignored) { }
    }
}
