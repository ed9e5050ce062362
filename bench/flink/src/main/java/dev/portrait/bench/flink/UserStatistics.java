package dev.portrait.bench.flink;

import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * W1: the sliding-window counts and sums of workloads.json per user, plus the
 * lifetime first and last event times, emitted once per user when the final
 * watermark passes (end of input), as their values at stream time `endTime`.
 *
 * Windows are bucketed as Portrait buckets them (docs/tags.md): one bucket per
 * `slide`, and at stream time T a window covers the buckets whose start is at
 * least floor(T/slide)*slide + slide - size. Statistics with the same slide share
 * one MapState of buckets (bucket start -> one cell per statistic), so an event
 * costs one read and one write per slide, whatever the number of statistics.
 * Buckets older than the longest window of their slide are removed when a new
 * bucket is opened.
 */
public class UserStatistics extends KeyedProcessFunction<String, Event, String> {
    private static final long serialVersionUID = 1L;

    /** Statistics sharing one slide. */
    private static final class Group implements java.io.Serializable {
        private static final long serialVersionUID = 1L;
        final long slideMs;
        long maxSizeMs;
        final List<Workloads.Stat> stats = new ArrayList<>();

        Group(long slideMs) {
            this.slideMs = slideMs;
        }
    }

    private final Workloads w;
    private final long endTime;
    private final Group[] groups;
    private transient MapState<Long, double[]>[] buckets;
    /** {first, last} event time. */
    private transient ValueState<long[]> lifetime;

    public UserStatistics(Workloads w, long endTime) {
        this.w = w;
        this.endTime = endTime;
        TreeMap<Long, Group> bySlide = new TreeMap<>();
        for (Workloads.Stat s : w.stats) {
            Group g = bySlide.computeIfAbsent(s.slideMs, Group::new);
            g.stats.add(s);
            g.maxSizeMs = Math.max(g.maxSizeMs, s.sizeMs);
        }
        groups = bySlide.values().toArray(new Group[0]);
    }

    @Override
    @SuppressWarnings("unchecked")
    public void open(org.apache.flink.api.common.functions.OpenContext openContext) {
        buckets = new MapState[groups.length];
        for (int i = 0; i < groups.length; i++) {
            buckets[i] = getRuntimeContext().getMapState(new MapStateDescriptor<>("buckets-" + groups[i].slideMs, Types.LONG, PrimitiveArrayTypeInfo.DOUBLE_PRIMITIVE_ARRAY_TYPE_INFO));
        }
        lifetime = getRuntimeContext().getState(new ValueStateDescriptor<>("lifetime", PrimitiveArrayTypeInfo.LONG_PRIMITIVE_ARRAY_TYPE_INFO));
    }

    @Override
    public void processElement(Event e, Context ctx, Collector<String> out) throws Exception {
        long t = e.time;
        if (w.lifetimeTypes.contains(e.type)) {
            long[] fl = lifetime.value();
            if (fl == null) {
                lifetime.update(new long[] {t, t});
                // Fires on the final watermark, after the whole input.
                ctx.timerService().registerEventTimeTimer(Long.MAX_VALUE);
            } else if (t < fl[0] || t > fl[1]) {
                if (t < fl[0]) fl[0] = t;
                if (t > fl[1]) fl[1] = t;
                lifetime.update(fl);
            }
        }
        for (int g = 0; g < groups.length; g++) {
            Group group = groups[g];
            List<Workloads.Stat> stats = group.stats;
            double[] cells = null;
            long start = Math.floorDiv(t, group.slideMs) * group.slideMs;
            boolean fresh = false;
            for (int i = 0; i < stats.size(); i++) {
                Workloads.Stat s = stats.get(i);
                if (!s.accepts(e)) continue;
                if (cells == null) {
                    cells = buckets[g].get(start);
                    if (cells == null) {
                        cells = new double[stats.size()];
                        fresh = true;
                    }
                }
                cells[i] += s.sum ? e.amount : 1;
            }
            if (cells == null) continue;
            buckets[g].put(start, cells);
            if (fresh) expire(g, start - group.maxSizeMs);
        }
    }

    /** Removes buckets that no window of the group can see again. */
    private void expire(int g, long below) throws Exception {
        Iterator<Long> keys = buckets[g].keys().iterator();
        while (keys.hasNext()) {
            if (keys.next() < below) keys.remove();
        }
    }

    @Override
    public void onTimer(long timestamp, OnTimerContext ctx, Collector<String> out) throws Exception {
        String user = ctx.getCurrentKey();
        StringBuilder sb = new StringBuilder(64);
        for (int g = 0; g < groups.length; g++) {
            Group group = groups[g];
            List<Workloads.Stat> stats = group.stats;
            double[] values = new double[stats.size()];
            long top = Math.floorDiv(endTime, group.slideMs) * group.slideMs;
            for (Map.Entry<Long, double[]> entry : buckets[g].entries()) {
                long start = entry.getKey();
                if (start > top) continue;
                double[] cells = entry.getValue();
                for (int i = 0; i < stats.size(); i++) {
                    if (start >= top + group.slideMs - stats.get(i).sizeMs) values[i] += cells[i];
                }
            }
            for (int i = 0; i < stats.size(); i++) {
                if (values[i] != 0) out.collect(Output.tag(sb, user, stats.get(i).id, values[i]));
            }
            buckets[g].clear();
        }
        long[] fl = lifetime.value();
        if (fl != null) {
            out.collect(Output.tag(sb, user, w.firstId, fl[0]));
            out.collect(Output.tag(sb, user, w.lastId, fl[1]));
            lifetime.clear();
        }
    }
}
