package dev.portrait.bench.flink;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/** The workload definitions of workloads.json (shared with the Portrait side), for one input flavor. */
public final class Workloads implements Serializable {
    private static final long serialVersionUID = 1L;

    /** A boolean attribute test, e.g. {"field":"success","equals":false}. Only `success` is used. */
    public static final class Filter implements Serializable {
        private static final long serialVersionUID = 1L;
        public final String field;
        public final boolean equals;

        Filter(JsonNode node) {
            this.field = node.get("field").asText();
            this.equals = node.get("equals").asBoolean();
            if (!field.equals("success")) throw new IllegalArgumentException("only success filters are supported, got " + field);
        }

        public boolean test(Event e) {
            return e.success == (equals ? 1 : 0);
        }
    }

    /** A sliding-window statistic per user (count or sum of `field`). */
    public static final class Stat implements Serializable {
        private static final long serialVersionUID = 1L;
        public final String id;
        public final Set<String> types;
        public final boolean sum;
        public final long sizeMs;
        public final long slideMs;
        public final Filter filter;

        Stat(JsonNode node, List<String> allTypes) {
            id = node.get("id").asText();
            types = typeSet(node.get("types"), allTypes);
            sum = node.get("fn").asText().equals("sum");
            // The parser keeps one numeric attribute, the amount: a sum of anything else would silently read it.
            if (sum && !node.path("field").asText("amount").equals("amount")) throw new IllegalArgumentException("only sums of amount are supported, got " + node.get("field").asText());
            sizeMs = node.get("sizeMs").asLong();
            slideMs = node.get("slideMs").asLong();
            filter = node.has("filter") ? new Filter(node.get("filter")) : null;
        }

        public boolean accepts(Event e) {
            return types.contains(e.type) && (filter == null || filter.test(e)) && (!sum || !Double.isNaN(e.amount));
        }
    }

    public final long outOfOrdernessMs;
    public final List<String> allTypes;
    public final List<Stat> stats = new ArrayList<>();
    public final String firstId;
    public final String lastId;
    public final Set<String> lifetimeTypes;
    // followedBy: A then B (same join field) within; matches and timeouts
    public final String fbId, fbTimeoutId, fbFirst, fbSecond, fbFirstType, fbSecondType, fbJoinField;
    public final Filter fbSecondFilter;
    public final long fbWithinMs;
    // notFollowedBy: A and not B within
    public final String nfbId, nfbFirst, nfbSecond, nfbFirstType, nfbSecondType;
    public final long nfbWithinMs;
    // repeated: n events within
    public final String repId, repStage, repType;
    public final Filter repFilter;
    public final int repTimes;
    public final long repWithinMs;
    // keyed aggregate over {user_id, keyField}
    public final String kaId, kaKeyField, kaOp;
    public final Set<String> kaTypes;
    public final boolean kaSum;
    public final long kaSizeMs, kaSlideMs;
    public final double kaThreshold;

    private Workloads(JsonNode root, String flavor) {
        outOfOrdernessMs = root.get("outOfOrdernessMs").asLong();
        JsonNode f = root.get("flavors").get(flavor);
        if (f == null) throw new IllegalArgumentException("unknown flavor " + flavor);
        allTypes = new ArrayList<>();
        f.get("allTypes").forEach(n -> allTypes.add(n.asText()));
        f.get("stats").forEach(n -> stats.add(new Stat(n, allTypes)));
        JsonNode lt = f.get("lifetime");
        firstId = lt.get("firstId").asText();
        lastId = lt.get("lastId").asText();
        lifetimeTypes = typeSet(lt.get("types"), allTypes);
        JsonNode fb = f.get("followedBy");
        fbId = fb.get("id").asText();
        fbTimeoutId = fb.get("timeoutId").asText();
        fbFirst = fb.get("first").asText();
        fbSecond = fb.get("second").asText();
        fbFirstType = fb.get("firstType").asText();
        fbSecondType = fb.get("secondType").asText();
        fbJoinField = fb.get("joinField").asText();
        fbSecondFilter = fb.has("secondFilter") ? new Filter(fb.get("secondFilter")) : null;
        fbWithinMs = fb.get("withinMs").asLong();
        JsonNode nfb = f.get("notFollowedBy");
        nfbId = nfb.get("id").asText();
        nfbFirst = nfb.get("first").asText();
        nfbSecond = nfb.get("second").asText();
        nfbFirstType = nfb.get("firstType").asText();
        nfbSecondType = nfb.get("secondType").asText();
        nfbWithinMs = nfb.get("withinMs").asLong();
        JsonNode rep = f.get("repeated");
        repId = rep.get("id").asText();
        repStage = rep.get("stage").asText();
        repType = rep.get("type").asText();
        repFilter = rep.has("filter") ? new Filter(rep.get("filter")) : null;
        repTimes = rep.get("times").asInt();
        repWithinMs = rep.get("withinMs").asLong();
        JsonNode ka = f.get("keyedAggregate");
        kaId = ka.get("id").asText();
        kaKeyField = ka.get("keyField").asText();
        kaOp = ka.get("op").asText();
        kaTypes = typeSet(ka.get("types"), allTypes);
        kaSum = ka.get("fn").asText().equals("sum");
        if (kaSum && !ka.path("field").asText("amount").equals("amount")) throw new IllegalArgumentException("only sums of amount are supported, got " + ka.get("field").asText());
        kaSizeMs = ka.get("sizeMs").asLong();
        kaSlideMs = ka.get("slideMs").asLong();
        kaThreshold = ka.get("threshold").asDouble();
    }

    private static Set<String> typeSet(JsonNode types, List<String> allTypes) {
        Set<String> out = new HashSet<>();
        types.forEach(n -> {
            if (n.asText().equals("*")) out.addAll(allTypes);
            else out.add(n.asText());
        });
        return out;
    }

    /** Loads the bundled workloads.json. */
    public static Workloads load(String flavor) throws IOException {
        try (InputStream in = Workloads.class.getResourceAsStream("/workloads.json")) {
            if (in == null) throw new IOException("workloads.json is missing from the jar");
            return new Workloads(new ObjectMapper().readTree(in), flavor);
        }
    }

    /** Compares like Portrait's aggregate predicates. */
    public static boolean compare(double value, String op, double threshold) {
        switch (op) {
            case ">": return value > threshold;
            case ">=": return value >= threshold;
            case "<": return value < threshold;
            case "<=": return value <= threshold;
            case "==": return value == threshold;
            case "!=": return value != threshold;
            default: throw new IllegalArgumentException("unknown operator " + op);
        }
    }

    @Override
    public String toString() {
        return "Workloads" + Arrays.asList(fbId, nfbId, repId, kaId) + " stats=" + stats.size();
    }
}
