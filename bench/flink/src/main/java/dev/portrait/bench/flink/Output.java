package dev.portrait.bench.flink;

import java.util.List;
import java.util.Map;

/**
 * Output lines, one JSON object each; the comparison (bench/diff) parses them,
 * rounds numbers and sorts the lines into the canonical form.
 */
final class Output {
    private Output() {}

    static String tag(StringBuilder sb, String entity, String tag, double value) {
        sb.setLength(0);
        sb.append("{\"kind\":\"tag\",\"entity\":");
        str(sb, entity);
        sb.append(",\"tag\":");
        str(sb, tag);
        sb.append(",\"value\":");
        num(sb, value);
        return sb.append('}').toString();
    }

    /** A sequence match or timeout: stage -> event times. */
    static String sequence(String rule, String key, String outcome, long time, Map<String, List<Event>> events) {
        StringBuilder sb = new StringBuilder(128);
        sb.append("{\"kind\":\"decision\",\"rule\":");
        str(sb, rule);
        sb.append(",\"key\":");
        str(sb, key);
        sb.append(",\"outcome\":\"").append(outcome).append("\",\"time\":").append(time).append(",\"events\":{");
        boolean firstStage = true;
        for (Map.Entry<String, List<Event>> stage : events.entrySet()) {
            if (!firstStage) sb.append(',');
            firstStage = false;
            str(sb, stage.getKey());
            sb.append(":[");
            List<Event> list = stage.getValue();
            for (int i = 0; i < list.size(); i++) {
                if (i > 0) sb.append(',');
                sb.append(list.get(i).time);
            }
            sb.append(']');
        }
        return sb.append("}}").toString();
    }

    /** An aggregate predicate that held at an event. */
    static String aggregate(String rule, String key, long time, double value) {
        StringBuilder sb = new StringBuilder(96);
        sb.append("{\"kind\":\"decision\",\"rule\":");
        str(sb, rule);
        sb.append(",\"key\":");
        str(sb, key);
        sb.append(",\"outcome\":\"match\",\"time\":").append(time).append(",\"value\":");
        num(sb, value);
        return sb.append('}').toString();
    }

    private static void num(StringBuilder sb, double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e15) sb.append((long) v);
        else sb.append(v);
    }

    private static void str(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') sb.append('\\').append(c);
            else if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
            else sb.append(c);
        }
        sb.append('"');
    }
}
