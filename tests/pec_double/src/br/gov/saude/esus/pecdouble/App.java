package br.gov.saude.esus.pecdouble;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.TimeUnit;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;
import javax.xml.XMLConstants;
import javax.xml.parsers.DocumentBuilderFactory;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

/** TEST DOUBLE of the PEC web application (pec-bundle.jar), started by e-SUS-PEC.service through standalone.sh. */
public final class App {
    private static Path logFile;
    private static final String VERSION = Common.version();
    private static Properties props;
    private static String treinamento = "false", tipoInstalacao = "SERVIDOR";

    public static void main(String[] args) throws Exception {
        Common.utf8Console();
        Path home = Paths.get(System.getProperty("pec.home", "/opt/e-SUS/webserver"));
        Files.createDirectories(home.resolve("logs"));
        logFile = home.resolve("logs/pec.log");
        log("INFO: iniciando e-SUS APS PEC versão " + VERSION);
        try {
            props = Common.loadProperties(home.resolve("config/application.properties"));
        } catch (IOException e) {
            fail("ERRO: não foi possível ler config/application.properties: " + e.getMessage());
        }
        try (Connection c = connect()) {
            String dbVersion = Installer.dbVersion(c);
            if (!VERSION.equals(dbVersion))
                fail("ERRO: versão do banco de dados (" + dbVersion + ") difere da versão da aplicação (" + VERSION + ")");
            treinamento = config(c, "TREINAMENTO", "false");
            tipoInstalacao = config(c, "TIPOINSTALACAO", "SERVIDOR");
        } catch (SQLException | RuntimeException e) {
            fail("ERRO: não foi possível acessar o banco de dados " + props.getProperty("spring.datasource.url") + ": " + e.getMessage());
        }
        int delay = Integer.parseInt(props.getProperty("pec.double.startup-delay-seconds", "3"));
        log("INFO: banco de dados na versão " + VERSION + "; carregando a aplicação (" + delay + " s)");
        Thread.sleep(delay * 1000L);
        if (Common.mute()) {
            // a PEC stuck at start-up: the service runs, nothing ever listens on its port
            log("INFO: carregando a aplicação");
            while (true) Thread.sleep(60_000L);
        }
        int port = Integer.parseInt(props.getProperty("server.port", "8080"));
        HttpServer server = HttpServer.create(new InetSocketAddress("0.0.0.0", port), 50);
        server.createContext("/", App::handle);
        server.setExecutor(Executors.newFixedThreadPool(4));
        server.start();
        // Nothing public shows a start line of the real PEC: the strict variant prints none to wait for.
        if (!Common.strict()) log("INFO: e-SUS APS PEC " + VERSION + " iniciado na porta " + port);
        if (Common.strict()) startAutomaticLotes();
    }

    // Automatic lotes (strict variant): like the real PEC at 00:00, a daily lote of the production not yet in one,
    // sent online to every destination node (tb_nodo) and recorded per node, as real servers do. No file is written:
    // a real PEC writes no lote directory ("Salvar em arquivo" is a browser download: pec-double-generate
    // salvar-lote stands for it). -----------------------------------------------------------------------------

    private static void startAutomaticLotes() {
        Properties cfg = Common.variantConfig();
        String when = cfg.getProperty("lotes.automaticos.horario", "00:00").trim();
        if (when.equals("desligado")) {
            log("INFO: transmissão automática de lotes desligada");
            return;
        }
        LocalTime at = LocalTime.parse(when);
        Path stamp = Paths.get(cfg.getProperty("lotes.automaticos.marca", "/var/lib/pec-double/ultima-geracao-lotes").trim());
        log("INFO: geração e envio automáticos de lotes às " + at);
        Executors.newSingleThreadScheduledExecutor(r -> { Thread t = new Thread(r, "lotes"); t.setDaemon(true); return t; })
            .scheduleWithFixedDelay(() -> {
                try {
                    automaticLotes(at, stamp);
                } catch (Exception e) {
                    log("ERRO: geração automática de lotes: " + e);
                }
            }, 0, 20, TimeUnit.SECONDS);
    }

    private static void automaticLotes(LocalTime at, Path stamp) throws Exception {
        String today = LocalDate.now().toString();
        boolean due = !LocalTime.now().isBefore(at)
            && !(Files.exists(stamp) && Files.readString(stamp).trim().equals(today));
        if (!due) return;
        try (Connection c = connect()) {
            c.setAutoCommit(false);
            long lote = scalar(c, "WITH pend AS (SELECT d.co_seq_dado_transp, d.dt_registro_dbl FROM tb_dado_transp d"
                + " WHERE NOT EXISTS (SELECT 1 FROM tb_lote_transp_item i WHERE i.co_dado_transp_dbl = d.co_seq_dado_transp)"
                + " FOR UPDATE),"
                + " lt AS (INSERT INTO tb_lote_transp (dt_criacao, dt_inicio_periodo_dbl, dt_fim_periodo_dbl, qt_registros_dbl)"
                + " SELECT now(), min(dt_registro_dbl)::date, max(dt_registro_dbl)::date, count(*) FROM pend"
                + " HAVING count(*) > 0 RETURNING co_seq_lote_transp),"
                + " it AS (INSERT INTO tb_lote_transp_item (co_lote_transp_dbl, co_dado_transp_dbl)"
                + " SELECT lt.co_seq_lote_transp, pend.co_seq_dado_transp FROM lt, pend RETURNING co_seq_lote_transp_item_dbl),"
                + " ln AS (INSERT INTO tb_lote_transp_nodo (co_lote_transp_dbl, co_nodo_dbl, co_situacao_dbl, dt_envio_dbl)"
                + " SELECT lt.co_seq_lote_transp, n.co_seq_nodo, 2, now() FROM lt, tb_nodo n RETURNING 1),"
                + " itn AS (INSERT INTO tb_lote_transp_item_nodo (co_lote_transp_item_dbl, co_nodo_dbl, co_situacao_dbl)"
                + " SELECT it.co_seq_lote_transp_item_dbl, n.co_seq_nodo, 2 FROM it, tb_nodo n RETURNING 1)"
                + " SELECT coalesce((SELECT co_seq_lote_transp FROM lt), 0)"
                + " + 0 * (SELECT count(*) FROM ln) + 0 * (SELECT count(*) FROM itn)");
            c.commit();
            c.setAutoCommit(true);
            Files.createDirectories(stamp.getParent());
            Files.writeString(stamp, today + "\n");
            log("INFO: transmissão automática: " + (lote > 0 ? "lote " + lote + " gerado e enviado aos nós de destino" : "nada a enviar"));
        }
    }

    private static Connection connect() throws SQLException {
        Properties p = new Properties();
        p.setProperty("user", props.getProperty("spring.datasource.username", "postgres"));
        p.setProperty("password", props.getProperty("spring.datasource.password", ""));
        p.setProperty("connectTimeout", "10");
        return DriverManager.getConnection(props.getProperty("spring.datasource.url"), p);
    }

    private static String config(Connection c, String key, String dflt) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("SELECT ds_texto FROM tb_config_sistema WHERE co_config_sistema = ?")) {
            s.setString(1, key);
            try (ResultSet r = s.executeQuery()) { return r.next() ? r.getString(1) : dflt; }
        }
    }

    private static void handle(HttpExchange ex) throws IOException {
        String path = ex.getRequestURI().getPath(), method = ex.getRequestMethod();
        int status;
        try {
            if (Common.v5()) issueXsrfCookie(ex);
            if (method.equals("GET") && (path.equals("/esus") || path.equals("/esus/")) && Common.strict()) {
                // A real 5.4.37 answers 401 to an anonymous GET /esus/ (its root / answers 200).
                status = send(ex, 401, "application/json", "{\"erro\": \"Não autorizado\"}\n");
            } else if (method.equals("GET") && path.equals("/") && Common.strict()) {
                status = send(ex, 200, "text/html; charset=utf-8", "<!DOCTYPE html><html lang=\"pt-BR\"><head><meta charset=\"utf-8\">"
                    + "<title>e-SUS APS</title></head><body></body></html>\n");
            } else if (method.equals("GET") && (path.equals("/esus") || path.equals("/esus/"))) {
                status = send(ex, 200, "text/html; charset=utf-8", "<!DOCTYPE html><html lang=\"pt-BR\"><head><meta charset=\"utf-8\">"
                    + "<title>e-SUS APS - Prontuário Eletrônico do Cidadão</title></head><body>"
                    + "<h1>e-SUS APS - Prontuário Eletrônico do Cidadão</h1><p>Versão " + VERSION + "</p></body></html>\n");
            } else if (method.equals("GET") && path.equals("/api/public/info") && Common.v5()) {
                // attested on 5.4.37 and 5.5.22: a JSON with "versao"; nothing else in it is public
                status = send(ex, 200, "application/json", "{\"versao\": " + Common.jsonString(VERSION) + "}\n");
            } else if (method.equals("GET") && path.equals("/api/public/info") && !Common.strict()) {
                status = send(ex, 200, "application/json", "{\"versao\": " + Common.jsonString(VERSION)
                    + ", \"treinamento\": " + Boolean.parseBoolean(treinamento)
                    + ", \"tipoInstalacao\": " + Common.jsonString(tipoInstalacao) + "}\n");
            } else if (method.equals("POST") && Common.v5() && !xsrfValid(ex)) {
                // Spring Security's CSRF filter: every POST carries the XSRF-TOKEN cookie's value in X-XSRF-TOKEN
                status = send(ex, 403, "application/json", "{\"error\": \"Forbidden\", \"message\": \"Invalid CSRF token\"}\n");
            } else if (method.equals("POST") && path.equals("/api/graphql") && Common.v5()) {
                status = graphql(ex);
            } else if (method.equals("POST") && path.matches("/api/cnes/\\d{1,9}") && Common.v5()) {
                status = importCnes(ex, Long.parseLong(path.substring("/api/cnes/".length())));
            } else {
                status = send(ex, 404, "application/json", "{\"erro\": \"Não encontrado\"}\n");
            }
        } catch (Exception e) {
            log("ERRO: " + method + " " + path + ": " + e);
            status = send(ex, 500, "application/json", "{\"erro\": \"Erro interno\"}\n");
        }
        log("ACESSO: " + ex.getRemoteAddress().getAddress().getHostAddress() + " \"" + method + " " + path + "\" " + status);
    }

    // Sessions and XSRF (5.x): what a real 5.x wants (pec-facts.md, third review): a GraphQL login mutation at
    // /api/graphql opens a session (JSESSIONID); every POST carries the XSRF-TOKEN cookie's value in X-XSRF-TOKEN;
    // the token is replaced at login, as Spring Security does. ------------------------------------------------------

    private static final Map<String, Long> SESSIONS = new ConcurrentHashMap<>();
    private static final Set<String> XSRF_TOKENS = ConcurrentHashMap.newKeySet();

    private static String cookie(HttpExchange ex, String name) {
        for (String h : ex.getRequestHeaders().getOrDefault("Cookie", List.of()))
            for (String c : h.split(";")) {
                String[] kv = c.trim().split("=", 2);
                if (kv.length == 2 && kv[0].equals(name)) return kv[1];
            }
        return null;
    }

    private static void issueXsrfCookie(HttpExchange ex) {
        String current = cookie(ex, "XSRF-TOKEN");
        if (current == null || !XSRF_TOKENS.contains(current)) setXsrfCookie(ex);
    }

    private static void setXsrfCookie(HttpExchange ex) {
        String token = java.util.UUID.randomUUID().toString();
        XSRF_TOKENS.add(token);
        ex.getResponseHeaders().add("Set-Cookie", "XSRF-TOKEN=" + token + "; Path=/");
    }

    private static boolean xsrfValid(HttpExchange ex) {
        String c = cookie(ex, "XSRF-TOKEN"), h = ex.getRequestHeaders().getFirst("X-XSRF-TOKEN");
        return c != null && c.equals(h) && XSRF_TOKENS.contains(c);
    }

    private static Long sessionUser(HttpExchange ex) {
        String id = cookie(ex, "JSESSIONID");
        return id == null ? null : SESSIONS.get(id);
    }

    private static int graphql(HttpExchange ex) throws Exception {
        String body = new String(ex.getRequestBody().readNBytes(1 << 20), StandardCharsets.UTF_8);
        String query = Common.jsonStringValue(body, "query");
        if (query == null) return send(ex, 400, "application/json", "{\"errors\": [{\"message\": \"Consulta ausente\"}]}\n");
        if (query.matches("(?s)\\s*mutation\\b.*\\blogin\\s*\\(.*")) return login(ex, query);
        if (query.contains("importacoesCnes")) {
            if (sessionUser(ex) == null)
                return send(ex, 200, "application/json", "{\"data\": null, \"errors\": [{\"message\": \"Não autorizado\"}]}\n");
            StringBuilder sb = new StringBuilder("{\"data\": {\"importacoesCnes\": {\"content\": [");
            List<Long> ids = new ArrayList<>(IMPORTS.keySet());
            ids.sort((a, b) -> Long.compare(b, a));   // newest first
            for (int i = 0; i < ids.size(); i++)
                sb.append(i == 0 ? "" : ", ").append("{\"id\": \"").append(ids.get(i)).append("\", \"status\": ")
                    .append(Common.jsonString(IMPORTS.get(ids.get(i)))).append("}");
            return send(ex, 200, "application/json", sb.append("]}}}\n").toString());
        }
        return send(ex, 200, "application/json", "{\"data\": null, \"errors\": [{\"message\": \"Consulta não suportada pelo dublê\"}]}\n");
    }

    private static String graphqlString(String query, String field) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("\\b" + field + "\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"").matcher(query);
        return m.find() ? Common.unescape(m.group(1)) : null;
    }

    private static int login(HttpExchange ex, String query) throws Exception {
        String user = graphqlString(query, "username"), pass = graphqlString(query, "password");
        Long id = null;
        if (user != null && pass != null) {
            try (Connection c = connect();
                 PreparedStatement s = c.prepareStatement("SELECT co_seq_usuario, ds_senha FROM tb_usuario WHERE ds_login = ? AND st_bloqueado = 0")) {
                s.setString(1, user);
                try (ResultSet r = s.executeQuery()) {
                    if (r.next() && Common.checkPassword(pass, r.getString(2))) id = r.getLong(1);
                }
            }
        }
        if (id == null) {
            log("INFO: login recusado");
            return send(ex, 200, "application/json",
                "{\"data\": {\"login\": null}, \"errors\": [{\"message\": \"Usuário e/ou senha inválidos.\"}]}\n");
        }
        String old = cookie(ex, "XSRF-TOKEN");
        if (old != null) XSRF_TOKENS.remove(old);
        String session = java.util.UUID.randomUUID().toString().replace("-", "").toUpperCase();
        SESSIONS.put(session, id);
        ex.getResponseHeaders().add("Set-Cookie", "JSESSIONID=" + session + "; Path=/; HttpOnly");
        setXsrfCookie(ex);
        return send(ex, 200, "application/json", "{\"data\": {\"login\": {\"success\": true}}}\n");
    }

    // CNES import (5.x) -----------------------------------------------------------------------------------------
    // POST /api/cnes/{municipioId}: the PEC's internal município id (tb_localidade.co_localidade, not the IBGE code),
    // a session of a user who administers the installation, multipart field "file". The import runs in the background
    // (status EM_ANDAMENTO, then CONCLUIDO or ERRO, read with the GraphQL query importacoesCnes). Like the real one it
    // deactivates every unit, team and lotação of the município the file lacks and reactivates those in it.

    private static final Map<Long, String> IMPORTS = new ConcurrentHashMap<>();
    private static final AtomicLong IMPORT_IDS = new AtomicLong();

    private static int importCnes(HttpExchange ex, long municipio) throws Exception {
        byte[] body = ex.getRequestBody().readAllBytes();
        Long user = sessionUser(ex);
        if (user == null) return send(ex, 401, "application/json", "{\"erro\": \"Não autorizado\"}\n");
        String ibge;
        try (Connection c = connect()) {
            if (scalar(c, "SELECT count(*) FROM tb_prof p JOIN tb_ator_papel a ON a.co_prof = p.co_seq_prof"
                    + " WHERE p.co_usuario = ?::bigint AND (EXISTS (SELECT 1 FROM tb_adm_geral g WHERE g.co_ator_papel = a.co_seq_ator_papel)"
                    + " OR EXISTS (SELECT 1 FROM tb_adm_municipal m WHERE m.co_ator_papel = a.co_seq_ator_papel))", String.valueOf(user)) == 0)
                return send(ex, 403, "application/json", "{\"erro\": \"Usuário sem permissão para importar o CNES\"}\n");
            try (PreparedStatement s = c.prepareStatement("SELECT co_ibge_dbl FROM tb_localidade WHERE co_localidade = ?")) {
                s.setLong(1, municipio);
                try (ResultSet r = s.executeQuery()) { ibge = r.next() ? r.getString(1) : null; }
            }
        }
        if (ibge == null) return send(ex, 400, "application/json", "{\"erro\": \"Município " + municipio + " não encontrado\"}\n");
        String[] part = multipartFile(ex.getRequestHeaders().getFirst("Content-Type"), body);
        if (part == null) return send(ex, 400, "application/json", "{\"erro\": \"Campo 'file' ausente\"}\n");
        byte[] file = part[1].getBytes(StandardCharsets.ISO_8859_1);
        byte[] xml = file;
        if (file.length > 1 && file[0] == 'P' && file[1] == 'K') {
            xml = null;
            try (ZipInputStream z = new ZipInputStream(new ByteArrayInputStream(file))) {
                for (ZipEntry e; (e = z.getNextEntry()) != null; )
                    if (e.getName().toLowerCase().endsWith(".xml")) { xml = z.readAllBytes(); break; }
            }
            if (xml == null) return send(ex, 400, "application/json", "{\"erro\": \"Arquivo zip sem XML\"}\n");
        }
        DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        f.setAttribute(XMLConstants.ACCESS_EXTERNAL_DTD, "");
        Document doc;
        try {
            doc = f.newDocumentBuilder().parse(new ByteArrayInputStream(xml));
        } catch (org.xml.sax.SAXException e) {
            return send(ex, 400, "application/json", "{\"erro\": \"Arquivo não é um XML do CNES\"}\n");
        }
        Element id = (Element) doc.getElementsByTagName("IDENTIFICACAO").item(0);
        if (!doc.getDocumentElement().getTagName().equals("ImportarXMLCNES") || id == null)
            return send(ex, 400, "application/json", "{\"erro\": \"Arquivo não é um XML do CNES\"}\n");
        String fileIbge = id.getAttribute("CO_IBGE_MUN");
        if (fileIbge.length() < 6 || !ibge.startsWith(fileIbge.substring(0, 6)))
            return send(ex, 400, "application/json", "{\"erro\": \"O arquivo é do município " + fileIbge
                + ", não do município " + municipio + "\"}\n");
        long importId = IMPORT_IDS.incrementAndGet();
        IMPORTS.put(importId, "EM_ANDAMENTO");
        String name = part[0], sha = Common.sha256Hex(file), ibge6 = fileIbge.substring(0, 6);
        int delay = Integer.parseInt(Common.variantConfig().getProperty("cnes.importacao.atraso-segundos", "3").trim());
        Thread t = new Thread(() -> {
            try {
                Thread.sleep(delay * 1000L);
                try (Connection c = connect()) {
                    c.setAutoCommit(false);
                    int[] n = upsert(c, doc, ibge6);
                    try (PreparedStatement s = c.prepareStatement("INSERT INTO tb_cnes_importacao (co_ibge_municipio, no_arquivo, ds_sha256,"
                            + " qt_unidades, qt_profissionais, qt_lotacoes, co_usuario) VALUES (?, ?, ?, ?, ?, ?, ?)")) {
                        s.setString(1, ibge6); s.setString(2, name); s.setString(3, sha);
                        s.setInt(4, n[0]); s.setInt(5, n[1]); s.setInt(6, n[2]); s.setLong(7, user);
                        s.executeUpdate();
                    }
                    c.commit();
                    log("INFO: CNES importado (importação " + importId + "): município " + ibge6 + ", " + n[0] + " unidades, "
                        + n[1] + " profissionais, " + n[2] + " lotações novas");
                }
                IMPORTS.put(importId, "CONCLUIDO");
            } catch (Exception e) {
                log("ERRO: importação do CNES " + importId + ": " + e);
                IMPORTS.put(importId, "ERRO");
            }
        }, "cnes-" + importId);
        t.setDaemon(true);
        t.start();
        return send(ex, 200, "application/json", "{}\n");
    }

    /** Returns {file name, content as ISO-8859-1 string} of the multipart field "file". */
    private static String[] multipartFile(String contentType, byte[] body) {
        if (contentType == null || !contentType.contains("boundary=")) return null;
        String boundary = "--" + contentType.substring(contentType.indexOf("boundary=") + 9).replace("\"", "").split(";")[0].trim();
        String all = new String(body, StandardCharsets.ISO_8859_1);
        for (String p : all.split(java.util.regex.Pattern.quote(boundary))) {
            int hdrEnd = p.indexOf("\r\n\r\n");
            if (hdrEnd < 0) continue;
            String headers = p.substring(0, hdrEnd);
            if (!headers.matches("(?is).*content-disposition:[^\r\n]*name=\"file\".*")) continue;
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("filename=\"([^\"]*)\"").matcher(headers);
            String content = p.substring(hdrEnd + 4);
            if (content.endsWith("\r\n")) content = content.substring(0, content.length() - 2);
            return new String[] {m.find() ? m.group(1) : "cnes.xml", content};
        }
        return null;
    }

    /** Upserts units, teams, professionals and lotações on the 5.x schema; deactivates what the município has and the
     * file lacks, reactivates what it has; returns {units, professionals, new lotações, teams}. */
    private static int[] upsert(Connection c, Document doc, String ibge6) throws SQLException {
        int units = 0, profs = 0, lots = 0, teams = 0;
        String ofMunicipio = "SELECT co_seq_unidade_saude FROM tb_unidade_saude WHERE left(co_ibge_municipio, 6) = ?";
        for (String table : new String[] {"tb_lotacao", "tb_equipe"}) {
            try (PreparedStatement s = c.prepareStatement("UPDATE " + table + " SET st_ativo = 0 WHERE co_unidade_saude IN (" + ofMunicipio + ")")) {
                s.setString(1, ibge6); s.executeUpdate();
            }
        }
        try (PreparedStatement s = c.prepareStatement("UPDATE tb_unidade_saude SET st_ativo = 0 WHERE left(co_ibge_municipio, 6) = ?")) {
            s.setString(1, ibge6); s.executeUpdate();
        }
        NodeList es = doc.getElementsByTagName("DADOS_GERAIS_ESTABELECIMENTOS");
        for (int i = 0; i < es.getLength(); i++) {
            Element e = (Element) es.item(i);
            long unit = scalar(c, "INSERT INTO tb_unidade_saude (nu_cnes, no_unidade_saude, co_ibge_municipio, st_ativo) VALUES (?, ?, ?, 1)"
                + " ON CONFLICT (nu_cnes) DO UPDATE SET no_unidade_saude = EXCLUDED.no_unidade_saude, st_ativo = 1 RETURNING co_seq_unidade_saude",
                e.getAttribute("CNES"), e.getAttribute("NM_FANTA"), ibge6);
            units++;
            NodeList eq = e.getElementsByTagName("DADOS_EQUIPES");
            for (int j = 0; j < eq.getLength(); j++) {
                Element t = (Element) eq.item(j);
                scalar(c, "INSERT INTO tb_equipe (nu_ine, no_equipe, co_unidade_saude, tp_equipe, st_ativo) VALUES (?, ?, ?::bigint, ?, 1)"
                    + " ON CONFLICT (nu_ine) DO UPDATE SET no_equipe = EXCLUDED.no_equipe, st_ativo = 1 RETURNING co_seq_equipe",
                    t.getAttribute("CO_INE"), t.getAttribute("DS_EQUIPE"), String.valueOf(unit), t.getAttribute("TP_EQUIPE"));
                teams++;
            }
        }
        NodeList ps = doc.getElementsByTagName("DADOS_PROFISSIONAIS");
        for (int i = 0; i < ps.getLength(); i++) {
            Element p = (Element) ps.item(i);
            String cpf = p.getAttribute("CPF_PROF");
            long user = scalar(c, "INSERT INTO tb_usuario (ds_login, ds_senha) VALUES (?, ?) ON CONFLICT (ds_login)"
                + " DO UPDATE SET ds_login = EXCLUDED.ds_login RETURNING co_seq_usuario", cpf, "!importado-cnes");
            long prof = scalar(c, "INSERT INTO tb_prof (co_usuario, nu_cns, no_civil_profissional, nu_cpf) VALUES (?::bigint, ?, ?, ?)"
                + " ON CONFLICT (nu_cpf) DO UPDATE SET nu_cns = EXCLUDED.nu_cns, no_civil_profissional = EXCLUDED.no_civil_profissional"
                + " RETURNING co_seq_prof", String.valueOf(user), p.getAttribute("CO_CNS"), p.getAttribute("NM_PROF"), cpf);
            profs++;
            NodeList ls = p.getElementsByTagName("DADOS_LOTACOES");
            for (int j = 0; j < ls.getLength(); j++) {
                Element l = (Element) ls.item(j);
                String cbo = l.getAttribute("CO_CBO"), ine = l.getAttribute("CO_INE");
                scalar(c, "INSERT INTO tb_cbo (co_cbo_2002, no_cbo) VALUES (?, ?) ON CONFLICT (co_cbo_2002)"
                    + " DO UPDATE SET co_cbo_2002 = EXCLUDED.co_cbo_2002 RETURNING co_cbo", cbo, "CBO " + cbo);
                long existing = scalar(c, "WITH r AS (UPDATE tb_lotacao l SET st_ativo = 1 FROM tb_cbo b, tb_unidade_saude u"
                    + " WHERE b.co_cbo = l.co_cbo AND u.co_seq_unidade_saude = l.co_unidade_saude AND l.co_prof = ?::bigint"
                    + " AND b.co_cbo_2002 = ? AND u.nu_cnes = ? AND coalesce((SELECT nu_ine FROM tb_equipe e WHERE e.co_seq_equipe = l.co_equipe), '') = ?"
                    + " RETURNING 1) SELECT count(*) FROM r", String.valueOf(prof), cbo, l.getAttribute("CNES"), ine);
                if (existing > 0) continue;
                long ap = scalar(c, "INSERT INTO tb_ator_papel (co_prof, no_tipo_ator_papel) VALUES (?::bigint, 'LOTACAO') RETURNING co_seq_ator_papel",
                    String.valueOf(prof));
                scalar(c, "INSERT INTO tb_lotacao (co_ator_papel, co_prof, co_cbo, co_unidade_saude, co_equipe, dt_importacao_cnes, st_ativo)"
                    + " SELECT ?::bigint, ?::bigint, b.co_cbo, u.co_seq_unidade_saude, (SELECT co_seq_equipe FROM tb_equipe WHERE nu_ine = ?), now(), 1"
                    + " FROM tb_cbo b, tb_unidade_saude u WHERE b.co_cbo_2002 = ? AND u.nu_cnes = ? RETURNING co_ator_papel",
                    String.valueOf(ap), String.valueOf(prof), ine, cbo, l.getAttribute("CNES"));
                try (PreparedStatement s = c.prepareStatement("INSERT INTO rl_ator_papel_perfil (co_ator_papel, co_perfil)"
                        + " SELECT ?, r.co_perfil FROM rl_perfil_cbo_padrao r JOIN tb_cbo b ON b.co_cbo = r.co_cbo WHERE b.co_cbo_2002 = ?")) {
                    s.setLong(1, ap); s.setString(2, cbo); s.executeUpdate();
                }
                lots++;
            }
        }
        return new int[] {units, profs, lots, teams};
    }

    private static long scalar(Connection c, String sql, String... args) throws SQLException {
        try (PreparedStatement s = c.prepareStatement(sql)) {
            for (int i = 0; i < args.length; i++) s.setString(i + 1, args[i]);
            try (ResultSet r = s.executeQuery()) {
                if (!r.next()) throw new SQLException("nenhuma linha: dados do CNES inconsistentes");
                return r.getLong(1);
            }
        }
    }

    // helpers ----------------------------------------------------------------------------------------

    private static int send(HttpExchange ex, int status, String type, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", type);
        ex.sendResponseHeaders(status, b.length);
        try (OutputStream o = ex.getResponseBody()) { o.write(b); }
        return status;
    }

    private static void fail(String msg) {
        log(msg);
        System.err.println(msg);
        System.exit(1);
    }

    static synchronized void log(String msg) {
        String line = LocalDateTime.now().format(DateTimeFormatter.ISO_LOCAL_DATE_TIME) + " " + msg;
        System.out.println(line);
        try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(logFile, StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND))) {
            w.println(line);
        } catch (IOException ignored) { }
    }
}
