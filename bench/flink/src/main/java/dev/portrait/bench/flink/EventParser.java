package dev.portrait.bench.flink;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import org.apache.flink.api.common.functions.RichFlatMapFunction;
import org.apache.flink.util.Collector;

import java.io.IOException;

/**
 * Parses one input line into an {@link Event}: canonical NDJSON
 * (`{"type","time","user_id",...attrs}`) or a Taobao CSV row
 * (`user_id,item_id,category_id,behavior,timestamp_s`). Lines that do not parse
 * are skipped and counted (Portrait dead-letters them).
 */
public class EventParser extends RichFlatMapFunction<String, Event> {
    private static final long serialVersionUID = 1L;
    private final boolean csv;
    private transient JsonFactory json;
    private long rejected;

    public EventParser(boolean csv) {
        this.csv = csv;
    }

    @Override
    public void open(org.apache.flink.api.common.functions.OpenContext openContext) {
        json = new JsonFactory();
    }

    @Override
    public void flatMap(String line, Collector<Event> out) throws IOException {
        if (line.isEmpty()) return;
        Event e = csv ? parseCsv(line) : parseJson(line);
        if (e == null || e.type == null || e.userId == null) {
            rejected++;
            return;
        }
        out.collect(e);
    }

    @Override
    public void close() {
        if (rejected > 0) System.err.println("rejected input lines: " + rejected);
    }

    private static Event parseCsv(String line) {
        int c1 = line.indexOf(','), c2 = line.indexOf(',', c1 + 1), c3 = line.indexOf(',', c2 + 1), c4 = line.indexOf(',', c3 + 1);
        if (c1 < 0 || c2 < 0 || c3 < 0 || c4 < 0) return null;
        Event e = new Event();
        e.userId = line.substring(0, c1);
        e.itemId = line.substring(c1 + 1, c2);
        e.categoryId = line.substring(c2 + 1, c3);
        e.type = line.substring(c3 + 1, c4);
        int end = line.length();
        if (line.charAt(end - 1) == '\r') end--;
        try {
            e.time = Long.parseLong(line.substring(c4 + 1, end).trim()) * 1000L;
        } catch (NumberFormatException ex) {
            return null;
        }
        return e;
    }

    private Event parseJson(String line) throws IOException {
        Event e = new Event();
        boolean hasTime = false;
        try (JsonParser p = json.createParser(line)) {
            if (p.nextToken() != JsonToken.START_OBJECT) return null;
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                JsonToken t = p.nextToken();
                switch (name) {
                    case "type": e.type = text(p, t); break;
                    case "time": e.time = p.getLongValue(); hasTime = true; break;
                    case "user_id": e.userId = text(p, t); break;
                    case "shop_id": e.shopId = text(p, t); break;
                    case "order_id": e.orderId = text(p, t); break;
                    case "item_id": e.itemId = text(p, t); break;
                    case "category_id": e.categoryId = text(p, t); break;
                    case "amount": if (t == JsonToken.VALUE_NUMBER_INT || t == JsonToken.VALUE_NUMBER_FLOAT) e.amount = p.getDoubleValue(); break;
                    case "success": e.success = t == JsonToken.VALUE_TRUE ? 1 : t == JsonToken.VALUE_FALSE ? 0 : -1; break;
                    default: p.skipChildren();
                }
            }
        } catch (IOException ex) {
            return null;
        }
        return hasTime ? e : null;
    }

    private static String text(JsonParser p, JsonToken t) throws IOException {
        return t == JsonToken.VALUE_NULL ? null : p.getText();
    }
}
