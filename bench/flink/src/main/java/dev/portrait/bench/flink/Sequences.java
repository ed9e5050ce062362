package dev.portrait.bench.flink;

import org.apache.flink.cep.CEP;
import org.apache.flink.cep.functions.PatternProcessFunction;
import org.apache.flink.cep.functions.TimedOutPartialMatchHandler;
import org.apache.flink.cep.nfa.aftermatch.AfterMatchSkipStrategy;
import org.apache.flink.cep.pattern.Pattern;
import org.apache.flink.cep.pattern.conditions.IterativeCondition;
import org.apache.flink.cep.pattern.conditions.SimpleCondition;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * W2: three Flink CEP patterns keyed per user, in event time.
 * <ul>
 *   <li>followedBy: A, then B of the same join field (order_id / item_id) within N
 *       (matches, and timed-out partial matches from the timeout side output);</li>
 *   <li>notFollowedBy: A and no B within N (a trailing notFollowedBy with within);</li>
 *   <li>repeated: n events (times(n), relaxed) within N, skip past the last event.</li>
 * </ul>
 * Each CEP operator gets only the event types its pattern reads (as Portrait
 * routes only those types to a rule).
 */
public final class Sequences {
    private Sequences() {}

    static final class TypeIs extends SimpleCondition<Event> {
        private static final long serialVersionUID = 1L;
        private final String type;
        private final Workloads.Filter filter;

        TypeIs(String type, Workloads.Filter filter) {
            this.type = type;
            this.filter = filter;
        }

        @Override
        public boolean filter(Event e) {
            return type.equals(e.type) && (filter == null || filter.test(e));
        }
    }

    /** B of the same join field as the A the partial match took. */
    static final class SameJoin extends IterativeCondition<Event> {
        private static final long serialVersionUID = 1L;
        private final String type, first, field;
        private final Workloads.Filter filter;

        SameJoin(String type, Workloads.Filter filter, String first, String field) {
            this.type = type;
            this.filter = filter;
            this.first = first;
            this.field = field;
        }

        @Override
        public boolean filter(Event e, Context<Event> ctx) throws Exception {
            if (!type.equals(e.type) || (filter != null && !filter.test(e))) return false;
            String mine = e.field(field);
            if (mine == null) return false;
            for (Event a : ctx.getEventsForPattern(first)) return mine.equals(a.field(field));
            return false;
        }
    }

    static final class Emit extends PatternProcessFunction<Event, String> implements TimedOutPartialMatchHandler<Event> {
        private static final long serialVersionUID = 1L;
        private final String rule, timeoutRule;
        private final long withinMs;
        private final boolean trailingAbsence;
        private final OutputTag<String> timeouts;

        Emit(String rule, String timeoutRule, long withinMs, boolean trailingAbsence, OutputTag<String> timeouts) {
            this.rule = rule;
            this.timeoutRule = timeoutRule;
            this.withinMs = withinMs;
            this.trailingAbsence = trailingAbsence;
            this.timeouts = timeouts;
        }

        @Override
        public void processMatch(Map<String, List<Event>> match, Context ctx, Collector<String> out) {
            long first = Long.MAX_VALUE, last = Long.MIN_VALUE;
            String user = null;
            for (List<Event> events : match.values()) {
                for (Event e : events) {
                    first = Math.min(first, e.time);
                    last = Math.max(last, e.time);
                    user = e.userId;
                }
            }
            // A match completed by an absence running out is decided when it ran out (first + within);
            // Flink's own context timestamp there is the watermark that fired it, which depends on watermark pacing.
            long time = trailingAbsence ? first + withinMs : last;
            out.collect(Output.sequence(rule, user, "match", time, match));
        }

        @Override
        public void processTimedOutMatch(Map<String, List<Event>> match, Context ctx) {
            if (timeouts == null) return;
            String user = null;
            for (List<Event> events : match.values()) for (Event e : events) user = e.userId;
            ctx.output(timeouts, Output.sequence(timeoutRule, user, "timeout", ctx.timestamp(), match));
        }
    }

    /** Builds the three CEP operators over the parsed events and returns their decisions as one stream. */
    static DataStream<String> build(DataStream<Event> events, Workloads w) {
        // followedBy, with timeouts
        OutputTag<String> timeoutTag = new OutputTag<String>("timeouts") {
            private static final long serialVersionUID = 1L;
        };
        Pattern<Event, Event> followedBy = Pattern.<Event>begin(w.fbFirst)
                .where(new TypeIs(w.fbFirstType, null))
                .followedBy(w.fbSecond)
                .where(new SameJoin(w.fbSecondType, w.fbSecondFilter, w.fbFirst, w.fbJoinField))
                .within(Duration.ofMillis(w.fbWithinMs));
        String fbA = w.fbFirstType, fbB = w.fbSecondType;
        SingleOutputStreamOperator<String> fb = CEP.pattern(
                        events.filter(e -> e.type.equals(fbA) || e.type.equals(fbB)).name("types " + w.fbId).keyBy(e -> e.userId),
                        followedBy)
                .process(new Emit(w.fbId, w.fbTimeoutId, w.fbWithinMs, false, timeoutTag))
                .name(w.fbId);

        // notFollowedBy at the end, with within
        Pattern<Event, Event> notFollowedBy = Pattern.<Event>begin(w.nfbFirst)
                .where(new TypeIs(w.nfbFirstType, null))
                .notFollowedBy(w.nfbSecond)
                .where(new TypeIs(w.nfbSecondType, null))
                .within(Duration.ofMillis(w.nfbWithinMs));
        String nA = w.nfbFirstType, nB = w.nfbSecondType;
        SingleOutputStreamOperator<String> nfb = CEP.pattern(
                        events.filter(e -> e.type.equals(nA) || e.type.equals(nB)).name("types " + w.nfbId).keyBy(e -> e.userId),
                        notFollowedBy)
                .process(new Emit(w.nfbId, null, w.nfbWithinMs, true, null))
                .name(w.nfbId);

        // times(n) within, skip past the last event
        Pattern<Event, Event> repeated = Pattern.<Event>begin(w.repStage, AfterMatchSkipStrategy.skipPastLastEvent())
                .where(new TypeIs(w.repType, w.repFilter))
                .times(w.repTimes)
                .within(Duration.ofMillis(w.repWithinMs));
        String rT = w.repType;
        SingleOutputStreamOperator<String> rep = CEP.pattern(
                        events.filter(e -> e.type.equals(rT)).name("types " + w.repId).keyBy(e -> e.userId),
                        repeated)
                .process(new Emit(w.repId, null, w.repWithinMs, false, null))
                .name(w.repId);

        return fb.union(fb.getSideOutput(timeoutTag), nfb, rep);
    }

    static boolean sameKey(Event a, Event b) {
        return Objects.equals(a.userId, b.userId);
    }
}
