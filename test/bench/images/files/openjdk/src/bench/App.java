package bench;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.logging.Logger;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import java.util.zip.GZIPOutputStream;
import javax.xml.parsers.DocumentBuilderFactory;
import org.w3c.dom.Document;
import org.w3c.dom.NodeList;

/** Benchmark app: typical startup work (XML config, hashing, regex, time,
 *  streams, zip), then an HTTP server. Prints "java app ready ..." once it listens. */
public final class App {
  private static final Logger LOG = Logger.getLogger("bench");
  private static final Map<String, String> STATE = new ConcurrentHashMap<>();

  private static void warmUp() throws Exception {
    String xml = "<config><option key='threads'>4</option><option key='name'>bench</option></config>";
    Document doc = DocumentBuilderFactory.newInstance().newDocumentBuilder()
        .parse(new ByteArrayInputStream(xml.getBytes(StandardCharsets.UTF_8)));
    NodeList opts = doc.getElementsByTagName("option");
    for (int i = 0; i < opts.getLength(); i++) {
      STATE.put(opts.item(i).getAttributes().getNamedItem("key").getTextContent(), opts.item(i).getTextContent());
    }
    List<String> words = IntStream.range(0, 2000).mapToObj(i -> "item-" + i).collect(Collectors.toList());
    Pattern p = Pattern.compile("item-(\\d+)7$");
    long matches = words.stream().filter(w -> p.matcher(w).find()).count();
    ByteArrayOutputStream bos = new ByteArrayOutputStream();
    try (GZIPOutputStream gz = new GZIPOutputStream(bos)) {
      gz.write(String.join(",", words).getBytes(StandardCharsets.UTF_8));
    }
    byte[] digest = MessageDigest.getInstance("SHA-256").digest(bos.toByteArray());
    STATE.put("matches", Long.toString(matches));
    STATE.put("digest", HexFormat.of().formatHex(digest));
    STATE.put("started", ZonedDateTime.now().format(DateTimeFormatter.ISO_OFFSET_DATE_TIME));
  }

  private static void handle(HttpExchange ex) throws IOException {
    byte[] body = STATE.toString().getBytes(StandardCharsets.UTF_8);
    ex.getResponseHeaders().add("Content-Type", "text/plain");
    ex.sendResponseHeaders(200, body.length);
    try (OutputStream os = ex.getResponseBody()) {
      os.write(body);
    }
  }

  public static void main(String[] args) throws Exception {
    Instant t0 = Instant.now();
    int port = Integer.parseInt(System.getenv().getOrDefault("PORT", "18092"));
    warmUp();
    HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 64);
    server.createContext("/", App::handle);
    server.setExecutor(Executors.newFixedThreadPool(4));
    server.start();
    LOG.fine("started");
    // one write, so that the readiness line never shows up in pieces
    System.out.println(String.format("java app ready on :%d (warm-up %.3f s)", port,
        Duration.between(t0, Instant.now()).toMillis() / 1000.0));
    System.out.flush();
  }
}
