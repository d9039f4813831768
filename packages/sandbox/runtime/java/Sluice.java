// Sluice helpers for Java, appended by the server to the end of the program's single source
// file (so no import and no classpath): progress and rich results on the events channel (the fd
// named by SLUICE_EVENTS_FD), one JSON object per line, each in one write(). Outside Sluice (no
// SLUICE_EVENTS_FD) progress is summed up on stderr and a result's text printed, as the Python
// helper does.
//
// Sync protocol: when the events fd is a socket (as Sluice gives it), the line carries
// "sync":true and a call returns only once the server answers one byte (0x06) on that fd, sent
// when the event has its place in the log after all output written before it (System.out and
// System.err are flushed first). End of file or an error there (the server is gone) ends the
// wait. On a pipe or a file the line has no "sync" and nothing waits. One call at a time, so
// each thread reads its own acknowledgement.
//
//   Sluice.progress(40, "Loading");  Sluice.progress("Fetching");  Sluice.progress(90, "Saving", Map.of("rows", 10));
//   Sluice.result(List.of(1, 2, 3));           text/plain and application/json
//   Sluice.result("text/html", "<b>hi</b>");   any MIME type; byte[] values are sent as base64
//   Sluice.resultFile("plot.png");             MIME type from the extension
final class Sluice {
    private Sluice() {}

    private static java.io.OutputStream channel;
    /** The same fd for reading acknowledgements; null when it is not a socket (no sync). */
    private static java.io.InputStream acks;

    private static final java.util.Map<String, String> MIME_TYPES = new java.util.HashMap<>();

    static {
        String[] pairs = {"png", "image/png", "jpg", "image/jpeg", "jpeg", "image/jpeg", "gif", "image/gif", "svg", "image/svg+xml",
            "html", "text/html", "htm", "text/html", "json", "application/json", "csv", "text/csv", "txt", "text/plain",
            "md", "text/markdown", "pdf", "application/pdf"};
        for (int i = 0; i < pairs.length; i += 2) MIME_TYPES.put(pairs[i], pairs[i + 1]);
    }

    /** Progress: a percentage (0 to 100) and a message. */
    public static void progress(double percent, String message) {
        progress(percent, message, null);
    }

    /** Progress: a percentage only. */
    public static void progress(double percent) {
        progress(percent, null, null);
    }

    /** Progress: a message only. */
    public static void progress(String message) {
        send(progressJSON(null, message, null), "[progress] " + message, true);
    }

    /** Progress: a percentage, a message (may be null) and data (any value toJSON takes, may be null). */
    public static void progress(double percent, String message, Object data) {
        String summary = "[progress] " + number(percent) + "%" + (message == null ? "" : " " + message);
        send(progressJSON(Double.valueOf(percent), message, data), summary, true);
    }

    /** A rich result: text/plain as printed, plus application/json for maps, collections, arrays, numbers and booleans; null sends nothing. */
    public static void result(Object value) {
        if (value == null) return;
        java.util.Map<String, String> bundle = new java.util.LinkedHashMap<>();
        bundle.put("text/plain", quote(text(value)));
        if (value instanceof java.util.Map || value instanceof Iterable || value instanceof Number || value instanceof Boolean
                || (value != null && value.getClass().isArray())) {
            bundle.put("application/json", toJSON(value));
        }
        sendResult(bundle, text(value));
    }

    /** A rich result of one MIME type: a byte[] is sent as base64, a JSON type as JSON, anything else as its text. */
    public static void result(String mimeType, Object value) {
        java.util.Map<String, String> bundle = new java.util.LinkedHashMap<>();
        bundle.put(mimeType, encode(mimeType, value));
        sendResult(bundle, mimeType.equals("text/plain") ? text(value) : "[result: " + mimeType + "]");
    }

    /** A file as a rich result, its MIME type from the extension (png, jpg, gif, svg, html, json, csv, txt, md, pdf). */
    public static void resultFile(String path) {
        String name = path.toLowerCase(java.util.Locale.ROOT);
        String ext = name.substring(name.lastIndexOf('.') + 1);
        String type = MIME_TYPES.get(ext);
        if (type == null || !name.contains(".")) {
            throw new IllegalArgumentException("Sluice.resultFile: cannot tell the MIME type of " + path + "; use Sluice.result(mimeType, bytes)");
        }
        byte[] bytes;
        try {
            bytes = java.nio.file.Files.readAllBytes(java.nio.file.Path.of(path));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        boolean text = type.startsWith("text/") || type.equals("image/svg+xml") || type.equals("application/json");
        result(type, text ? new String(bytes, java.nio.charset.StandardCharsets.UTF_8) : bytes);
    }

    /** A value as JSON: null, booleans, numbers (non-finite ones as null), strings, maps, iterables and arrays; anything else as its toString(). */
    public static String toJSON(Object value) {
        StringBuilder sb = new StringBuilder();
        writeJSON(sb, value, 0);
        return sb.toString();
    }

    private static String progressJSON(Double percent, String message, Object data) {
        StringBuilder sb = new StringBuilder("{\"type\":\"progress\"");
        if (percent != null) sb.append(",\"percent\":").append(number(percent));
        if (message != null) sb.append(",\"message\":").append(quote(message));
        if (data != null) sb.append(",\"data\":").append(toJSON(data));
        return sb.append('}').toString();
    }

    private static void sendResult(java.util.Map<String, String> bundle, String plain) {
        StringBuilder sb = new StringBuilder("{\"type\":\"result\",\"data\":{");
        boolean first = true;
        for (java.util.Map.Entry<String, String> e : bundle.entrySet()) {
            if (!first) sb.append(',');
            first = false;
            sb.append(quote(e.getKey())).append(':').append(e.getValue());
        }
        send(sb.append("}}").toString(), plain, false);
    }

    private static String encode(String mimeType, Object value) {
        if (value instanceof byte[]) return quote(java.util.Base64.getEncoder().encodeToString((byte[]) value));
        if (mimeType.equals("application/json") || mimeType.endsWith("+json")) {
            // A string is taken as JSON text already; newlines are whitespace there, and the line must stay one line.
            return value instanceof String ? ((String) value).replace('\n', ' ').replace('\r', ' ') : toJSON(value);
        }
        return quote(text(value));
    }

    private static String text(Object value) {
        if (value == null) return "null";
        if (value instanceof Object[]) return java.util.Arrays.deepToString((Object[]) value);
        if (value.getClass().isArray()) {
            StringBuilder sb = new StringBuilder("[");
            for (int i = 0, n = java.lang.reflect.Array.getLength(value); i < n; i++) {
                if (i > 0) sb.append(", ");
                sb.append(java.lang.reflect.Array.get(value, i));
            }
            return sb.append(']').toString();
        }
        return String.valueOf(value);
    }

    private static void writeJSON(StringBuilder sb, Object v, int depth) {
        if (depth > 100) throw new IllegalArgumentException("Sluice.toJSON: nested more than 100 deep (a cycle?)");
        if (v == null) {
            sb.append("null");
        } else if (v instanceof Boolean) {
            sb.append(v);
        } else if (v instanceof Double || v instanceof Float) {
            sb.append(number(((Number) v).doubleValue()));
        } else if (v instanceof Number) {
            sb.append(v instanceof java.math.BigDecimal ? ((java.math.BigDecimal) v).toString() : v.toString());
        } else if (v instanceof CharSequence || v instanceof Character || v instanceof Enum) {
            sb.append(quote(v.toString()));
        } else if (v instanceof java.util.Map) {
            sb.append('{');
            boolean first = true;
            for (java.util.Map.Entry<?, ?> e : ((java.util.Map<?, ?>) v).entrySet()) {
                if (!first) sb.append(',');
                first = false;
                sb.append(quote(String.valueOf(e.getKey()))).append(':');
                writeJSON(sb, e.getValue(), depth + 1);
            }
            sb.append('}');
        } else if (v instanceof Iterable) {
            sb.append('[');
            boolean first = true;
            for (Object item : (Iterable<?>) v) {
                if (!first) sb.append(',');
                first = false;
                writeJSON(sb, item, depth + 1);
            }
            sb.append(']');
        } else if (v.getClass().isArray()) {
            sb.append('[');
            for (int i = 0, n = java.lang.reflect.Array.getLength(v); i < n; i++) {
                if (i > 0) sb.append(',');
                writeJSON(sb, java.lang.reflect.Array.get(v, i), depth + 1);
            }
            sb.append(']');
        } else if (v instanceof java.util.Optional) {
            writeJSON(sb, ((java.util.Optional<?>) v).orElse(null), depth + 1);
        } else {
            sb.append(quote(v.toString()));
        }
    }

    private static String number(double d) {
        if (Double.isNaN(d) || Double.isInfinite(d)) return "null";
        if (d == Math.rint(d) && Math.abs(d) < 1e15) return Long.toString((long) d);
        return Double.toString(d);
    }

    private static String quote(String s) {
        StringBuilder sb = new StringBuilder(s.length() + 2).append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"') {
                sb.append("\\\"");
            } else if (c == '\\') {
                sb.append("\\\\");
            } else if (c == '\n') {
                sb.append("\\n");
            } else if (c == '\r') {
                sb.append("\\r");
            } else if (c == '\t') {
                sb.append("\\t");
            } else if (c < 0x20 || (Character.isSurrogate(c) && !pairedSurrogate(s, i))) {
                // Control characters, and lone surrogates (which UTF-8 cannot carry), as \\u escapes.
                sb.append(String.format("\\u%04x", (int) c));
            } else {
                sb.append(c);
            }
        }
        return sb.append('"').toString();
    }

    private static boolean pairedSurrogate(String s, int i) {
        char c = s.charAt(i);
        if (Character.isHighSurrogate(c)) return i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1));
        return i > 0 && Character.isHighSurrogate(s.charAt(i - 1));
    }

    /** One line, one write(): the events reader splits on newlines, and writers in several threads must not interleave. */
    private static synchronized void send(String json, String outside, boolean toStderr) {
        String fd = System.getenv("SLUICE_EVENTS_FD");
        if (fd == null || fd.isEmpty()) {
            (toStderr ? System.err : System.out).println(outside);
            return;
        }
        System.out.flush();
        System.err.flush();
        try {
            if (channel == null) open(Integer.parseInt(fd));
            String line = acks == null ? json : json.substring(0, json.length() - 1) + ",\"sync\":true}";
            channel.write((line + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8));
        } catch (java.io.IOException | NumberFormatException e) {
            throw new IllegalStateException("Sluice: cannot write to the events channel (SLUICE_EVENTS_FD=" + fd + ")", e);
        }
        if (acks != null) awaitAck();
    }

    /** Waits for the server's one byte; end of file or an error (the server is gone) ends the wait too. */
    private static void awaitAck() {
        while (true) {
            try {
                acks.read();
                return;
            } catch (java.io.IOException e) {
                // A non-blocking fd (EAGAIN): wait a little and read again. FileInputStream retries EINTR itself.
                if (!String.valueOf(e.getMessage()).contains("temporarily unavailable")) return;
                try {
                    Thread.sleep(1);
                } catch (InterruptedException interrupted) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    /**
     * Streams on the inherited fd itself. It is a socket, which /dev/fd/N cannot reopen (ENXIO),
     * and Java has no public way to wrap an fd number: Sluice runs java with
     * --add-opens java.base/java.io=ALL-UNNAMED so the FileDescriptor can be set; elsewhere
     * (a pipe) reopening /dev/fd/N works. Whether it is a socket: stat() of /proc/self/fd/N.
     */
    private static void open(int fd) throws java.io.IOException {
        boolean socket;
        try {
            int mode = (Integer) java.nio.file.Files.getAttribute(java.nio.file.Path.of("/proc/self/fd/" + fd), "unix:mode");
            socket = (mode & 0170000) == 0140000;
        } catch (java.io.IOException | RuntimeException e) {
            socket = false;
        }
        try {
            java.io.FileDescriptor d = new java.io.FileDescriptor();
            java.lang.reflect.Field f = java.io.FileDescriptor.class.getDeclaredField("fd");
            f.setAccessible(true);
            f.setInt(d, fd);
            channel = new java.io.FileOutputStream(d);
            if (socket) acks = new java.io.FileInputStream(d);
        } catch (ReflectiveOperationException | RuntimeException e) {
            // No reflection: a socket cannot be reopened either, so this is a pipe or a file.
            channel = new java.io.FileOutputStream("/dev/fd/" + fd);
        }
    }
}
