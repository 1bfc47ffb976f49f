package br.gov.saude.esus.pecdouble;

import java.io.IOException;
import java.io.InputStream;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.security.spec.KeySpec;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.Properties;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;

/** Helpers shared by the installer and the application of the PEC test double. */
final class Common {
    private Common() { }

    private static final SecureRandom RANDOM = new SecureRandom();
    private static Properties build;

    /** version.properties, baked into the jar at build time. */
    static synchronized Properties build() {
        if (build == null) {
            build = new Properties();
            try (InputStream in = Common.class.getResourceAsStream("/version.properties")) {
                if (in == null) throw new IllegalStateException("version.properties ausente");
                build.load(new java.io.InputStreamReader(in, StandardCharsets.UTF_8));
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }
        return build;
    }

    /** Operators read Portuguese: print UTF-8 whatever the locale (containers often have none). */
    static void utf8Console() {
        System.setOut(new java.io.PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true, StandardCharsets.UTF_8));
        System.setErr(new java.io.PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.err), true, StandardCharsets.UTF_8));
    }

    static String version() { return build().getProperty("version"); }

    static boolean broken() { return Boolean.parseBoolean(build().getProperty("broken", "false")); }
    /** A MUDO build installs and migrates cleanly, but its application never answers (a PEC stuck at start-up). */
    static boolean mute() { return "mudo".equals(build().getProperty("broken", "false").trim()); }

    /** Numeric comparison per dot-separated component: 4.10.0 > 4.9.9. */
    static int compareVersions(String a, String b) {
        String[] x = a.trim().split("\\."), y = b.trim().split("\\.");
        for (int i = 0; i < Math.max(x.length, y.length); i++) {
            long p = i < x.length ? Long.parseLong(x[i].replaceAll("\\D", "")) : 0;
            long q = i < y.length ? Long.parseLong(y[i].replaceAll("\\D", "")) : 0;
            if (p != q) return Long.compare(p, q);
        }
        return 0;
    }

    /** The double's own settings, /etc/pec-double.properties (env PEC_DOUBLE_CONFIG): absent means the full variant. */
    static Properties variantConfig() {
        Path f = java.nio.file.Paths.get(System.getenv().getOrDefault("PEC_DOUBLE_CONFIG", "/etc/pec-double.properties"));
        try {
            return java.nio.file.Files.exists(f) ? loadProperties(f) : new Properties();
        } catch (IOException e) {
            throw new IllegalStateException("configuração do dublê ilegível: " + f + ": " + e.getMessage(), e);
        }
    }

    /** The 5.x line (5.5.28): the schema of sql/migrations/5.5.28.sql, always strict, /api/public/info, CNES import
     * through a session login (GraphQL + XSRF) and asynchronously. */
    static boolean v5() { return compareVersions(version(), "5.0") >= 0; }

    /** STRICT variant: only what is known of a real server (md5 auth, no invented config keys, transmission per node);
     * a 5.x build is always strict (the full variant's inventions were never part of it). */
    static boolean strict() { return v5() || "strict".equals(variantConfig().getProperty("variant", "full").trim()); }

    /** tb_config_sistema keys the double invented; the strict variant has none of them. */
    static final String[] INVENTED_KEYS = {"TRANSMISSAO_AUTOMATICA", "HORARIO_TRANSMISSAO", "ATUALIZAR_PERFIS_IMPORTACAO_CNES"};

    static Properties loadProperties(Path file) throws IOException {
        Properties p = new Properties();
        try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            p.load(r);
        }
        return p;
    }

    static String randomPassword(int length) {
        String alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < length; i++) sb.append(alphabet.charAt(RANDOM.nextInt(alphabet.length())));
        return sb.toString();
    }

    /** Password hash stored in tb_usuario.ds_senha: pbkdf2_sha256$ITER$SALT_B64$HASH_B64 (double's format). */
    static String hashPassword(String password) {
        byte[] salt = new byte[16];
        RANDOM.nextBytes(salt);
        return "pbkdf2_sha256$10000$" + Base64.getEncoder().encodeToString(salt) + "$"
            + Base64.getEncoder().encodeToString(pbkdf2(password, salt, 10000));
    }

    static boolean checkPassword(String password, String stored) {
        if (stored == null) return false;
        String[] p = stored.split("\\$");
        if (p.length != 4 || !p[0].equals("pbkdf2_sha256")) return false;
        byte[] expected = Base64.getDecoder().decode(p[3]);
        byte[] actual = pbkdf2(password, Base64.getDecoder().decode(p[2]), Integer.parseInt(p[1]));
        return MessageDigest.isEqual(expected, actual);
    }

    private static byte[] pbkdf2(String password, byte[] salt, int iterations) {
        try {
            KeySpec spec = new PBEKeySpec(password.toCharArray(), salt, iterations, 256);
            return SecretKeyFactory.getInstance("PBKDF2WithHmacSHA256").generateSecret(spec).getEncoded();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static String sha256Hex(byte[] data) {
        try {
            StringBuilder sb = new StringBuilder();
            for (byte b : MessageDigest.getInstance("SHA-256").digest(data)) sb.append(String.format("%02x", b));
            return sb.toString();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static String jsonString(String s) {
        if (s == null) return "null";
        StringBuilder sb = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"': sb.append("\\\""); break;
                case '\\': sb.append("\\\\"); break;
                case '\n': sb.append("\\n"); break;
                case '\r': sb.append("\\r"); break;
                case '\t': sb.append("\\t"); break;
                default:
                    if (c < 0x20) sb.append(String.format("\\u%04x", (int) c)); else sb.append(c);
            }
        }
        return sb.append('"').toString();
    }

    /** The value of a JSON (or GraphQL) string literal's body: every escape resolved, \\uXXXX included. */
    static String unescape(String body) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < body.length(); i++) {
            char c = body.charAt(i);
            if (c != '\\' || i + 1 >= body.length()) { sb.append(c); continue; }
            char e = body.charAt(++i);
            switch (e) {
                case 'n': sb.append('\n'); break;
                case 'r': sb.append('\r'); break;
                case 't': sb.append('\t'); break;
                case 'b': sb.append('\b'); break;
                case 'f': sb.append('\f'); break;
                case 'u':
                    if (i + 4 < body.length()) { sb.append((char) Integer.parseInt(body.substring(i + 1, i + 5), 16)); i += 4; }
                    break;
                default: sb.append(e);
            }
        }
        return sb.toString();
    }

    /** The string value of {@code key} in a JSON object (the first occurrence, any depth), escapes resolved. */
    static String jsonStringValue(String json, String key) {
        java.util.regex.Matcher m = java.util.regex.Pattern
            .compile("\"" + java.util.regex.Pattern.quote(key) + "\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"").matcher(json);
        return m.find() ? unescape(m.group(1)) : null;
    }

    /** Value of a top-level string/boolean/number key in a flat JSON object (enough for /etc/pec.config). */
    static String jsonValue(String json, String key) {
        java.util.regex.Matcher m = java.util.regex.Pattern
            .compile("\"" + java.util.regex.Pattern.quote(key) + "\"\\s*:\\s*(\"((?:[^\"\\\\]|\\\\.)*)\"|[^,}\\s]+)")
            .matcher(json);
        if (!m.find()) return null;
        return m.group(2) != null ? m.group(2).replace("\\\"", "\"").replace("\\\\", "\\") : m.group(1);
    }
}
