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
import java.util.Base64;
import java.util.Properties;
import java.util.concurrent.Executors;
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
            } else if (method.equals("GET") && path.equals("/api/public/info") && !Common.strict()) {
                status = send(ex, 200, "application/json", "{\"versao\": " + Common.jsonString(VERSION)
                    + ", \"treinamento\": " + Boolean.parseBoolean(treinamento)
                    + ", \"tipoInstalacao\": " + Common.jsonString(tipoInstalacao) + "}\n");
            } else if (method.equals("POST") && path.matches("/api/cnes/\\d{6,7}") && Common.compareVersions(VERSION, "4.5.5") >= 0) {
                status = importCnes(ex, path.substring("/api/cnes/".length()));
            } else {
                status = send(ex, 404, "application/json", "{\"erro\": \"Não encontrado\"}\n");
            }
        } catch (Exception e) {
            log("ERRO: " + method + " " + path + ": " + e);
            status = send(ex, 500, "application/json", "{\"erro\": \"Erro interno\"}\n");
        }
        log("ACESSO: " + ex.getRemoteAddress().getAddress().getHostAddress() + " \"" + method + " " + path + "\" " + status);
    }

    // CNES import (4.5.5 and later only) ------------------------------------------------------------

    private static int importCnes(HttpExchange ex, String municipio) throws Exception {
        byte[] body = ex.getRequestBody().readAllBytes();
        try (Connection c = connect()) {
            Long user = authenticate(ex, c);
            if (user == null) {
                ex.getResponseHeaders().set("WWW-Authenticate", "Basic realm=\"e-SUS APS\"");
                return send(ex, 401, "application/json", "{\"erro\": \"Usuário sem permissão para importar o CNES\"}\n");
            }
            c.setAutoCommit(false);
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
            Document doc = f.newDocumentBuilder().parse(new ByteArrayInputStream(xml));
            Element id = (Element) doc.getElementsByTagName("IDENTIFICACAO").item(0);
            if (!doc.getDocumentElement().getTagName().equals("ImportarXMLCNES") || id == null)
                return send(ex, 400, "application/json", "{\"erro\": \"Arquivo não é um XML do CNES\"}\n");
            String ibge = id.getAttribute("CO_IBGE_MUN");
            if (!ibge.startsWith(municipio) && !municipio.startsWith(ibge))
                return send(ex, 400, "application/json", "{\"erro\": \"O arquivo é do município " + ibge + ", não de " + municipio + "\"}\n");
            int[] n = upsert(c, doc, ibge);
            try (PreparedStatement s = c.prepareStatement("INSERT INTO tb_cnes_importacao (co_ibge_municipio, no_arquivo, ds_sha256,"
                    + " qt_unidades, qt_profissionais, qt_lotacoes, co_usuario) VALUES (?, ?, ?, ?, ?, ?, ?)")) {
                s.setString(1, ibge); s.setString(2, part[0]); s.setString(3, Common.sha256Hex(file));
                s.setInt(4, n[0]); s.setInt(5, n[1]); s.setInt(6, n[2]); s.setLong(7, user);
                s.executeUpdate();
            }
            c.commit();
            log("INFO: CNES importado: município " + ibge + ", " + n[0] + " unidades, " + n[1] + " profissionais, " + n[2] + " lotações novas");
            return send(ex, 200, "application/json", "{\"unidades\": " + n[0] + ", \"equipes\": " + n[3]
                + ", \"profissionais\": " + n[1] + ", \"lotacoesCriadas\": " + n[2] + "}\n");
        }
    }

    /** Basic authentication of a tb_usuario login that is ADMINISTRADOR_GERAL (tb_adm_geral). */
    private static Long authenticate(HttpExchange ex, Connection c) throws SQLException {
        String h = ex.getRequestHeaders().getFirst("Authorization");
        if (h == null || !h.startsWith("Basic ")) return null;
        String[] lp = new String(Base64.getDecoder().decode(h.substring(6).trim()), StandardCharsets.UTF_8).split(":", 2);
        if (lp.length != 2) return null;
        try (PreparedStatement s = c.prepareStatement("SELECT u.co_seq_usuario, u.ds_senha FROM tb_usuario u"
                + " JOIN tb_prof p ON p.co_usuario = u.co_seq_usuario JOIN tb_ator_papel ap ON ap.co_prof = p.co_seq_prof"
                + " JOIN tb_adm_geral g ON g.co_ator_papel = ap.co_seq_ator_papel WHERE u.ds_login = ? AND NOT u.st_bloqueado")) {
            s.setString(1, lp[0]);
            try (ResultSet r = s.executeQuery()) {
                return r.next() && Common.checkPassword(lp[1], r.getString(2)) ? r.getLong(1) : null;
            }
        }
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

    /** Upserts units, teams, professionals and lotações; returns {units, professionals, new lotações, teams}. */
    private static int[] upsert(Connection c, Document doc, String ibge) throws SQLException {
        int units = 0, profs = 0, lots = 0, teams = 0;
        NodeList es = doc.getElementsByTagName("DADOS_GERAIS_ESTABELECIMENTOS");
        for (int i = 0; i < es.getLength(); i++) {
            Element e = (Element) es.item(i);
            long unit = scalar(c, "INSERT INTO tb_unidade_saude (nu_cnes, no_unidade_saude, co_ibge_municipio) VALUES (?, ?, ?)"
                + " ON CONFLICT (nu_cnes) DO UPDATE SET no_unidade_saude = EXCLUDED.no_unidade_saude RETURNING co_seq_unidade_saude",
                e.getAttribute("CNES"), e.getAttribute("NM_FANTA"), ibge);
            units++;
            NodeList eq = e.getElementsByTagName("DADOS_EQUIPES");
            for (int j = 0; j < eq.getLength(); j++) {
                Element t = (Element) eq.item(j);
                scalar(c, "INSERT INTO tb_equipe (nu_ine, no_equipe, co_unidade_saude, tp_equipe) VALUES (?, ?, ?::bigint, ?)"
                    + " ON CONFLICT (nu_ine) DO UPDATE SET no_equipe = EXCLUDED.no_equipe RETURNING co_seq_equipe",
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
            long prof = scalar(c, "INSERT INTO tb_prof (co_usuario, nu_cns, no_profissional, nu_cpf) VALUES (?::bigint, ?, ?, ?)"
                + " ON CONFLICT (nu_cpf) DO UPDATE SET nu_cns = EXCLUDED.nu_cns, no_profissional = EXCLUDED.no_profissional"
                + " RETURNING co_seq_prof", String.valueOf(user), p.getAttribute("CO_CNS"), p.getAttribute("NM_PROF"), cpf);
            profs++;
            NodeList ls = p.getElementsByTagName("DADOS_LOTACOES");
            for (int j = 0; j < ls.getLength(); j++) {
                Element l = (Element) ls.item(j);
                String cbo = l.getAttribute("CO_CBO"), ine = l.getAttribute("CO_INE");
                scalar(c, "INSERT INTO tb_cbo (co_cbo_2002, no_cbo) VALUES (?, ?) ON CONFLICT (co_cbo_2002)"
                    + " DO UPDATE SET co_cbo_2002 = EXCLUDED.co_cbo_2002 RETURNING co_cbo", cbo, "CBO " + cbo);
                long exists = scalar(c, "SELECT count(*) FROM tb_lotacao l JOIN tb_ator_papel a ON a.co_seq_ator_papel = l.co_ator_papel"
                    + " JOIN tb_cbo b ON b.co_cbo = l.co_cbo JOIN tb_unidade_saude u ON u.co_seq_unidade_saude = l.co_unidade_saude"
                    + " LEFT JOIN tb_equipe e ON e.co_seq_equipe = l.co_equipe WHERE a.co_prof = ?::bigint AND b.co_cbo_2002 = ?"
                    + " AND u.nu_cnes = ? AND coalesce(e.nu_ine, '') = ?", String.valueOf(prof), cbo, l.getAttribute("CNES"), ine);
                if (exists > 0) continue;
                long ap = scalar(c, "INSERT INTO tb_ator_papel (co_prof, tp_ator_papel) VALUES (?::bigint, 'LOTACAO') RETURNING co_seq_ator_papel",
                    String.valueOf(prof));
                scalar(c, "INSERT INTO tb_lotacao (co_ator_papel, co_cbo, co_unidade_saude, co_equipe, dt_importacao_cnes)"
                    + " SELECT ?::bigint, b.co_cbo, u.co_seq_unidade_saude, (SELECT co_seq_equipe FROM tb_equipe WHERE nu_ine = ?), now()"
                    + " FROM tb_cbo b, tb_unidade_saude u WHERE b.co_cbo_2002 = ? AND u.nu_cnes = ? RETURNING co_ator_papel",
                    String.valueOf(ap), ine, cbo, l.getAttribute("CNES"));
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
