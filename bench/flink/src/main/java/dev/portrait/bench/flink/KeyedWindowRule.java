package dev.portrait.bench.flink;

import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.typeutils.ListTypeInfo;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;

import java.util.List;

/**
 * W3, the dynamic key-by rule: per {user_id, keyField}, the sum (or count) of
 * the window of workloads.json, compared with the threshold at each event.
 *
 * Like Flink CEP in event time (and Portrait's `ordering: "event-time"`), each
 * key's events wait until the watermark passes them and are then taken in
 * event-time order (arrival order within one timestamp); an event at or behind
 * the watermark is late and dropped. The window is Portrait's bucketed sliding
 * window at the key's stream time (the event's time): buckets of `slide` whose
 * start is at least floor(t/slide)*slide + slide - size. The bucket state is one
 * small array per key: [start, total, count] per bucket, oldest first.
 */
public class KeyedWindowRule extends KeyedProcessFunction<String, Event, String> {
    private static final long serialVersionUID = 1L;
    private final Workloads w;
    private transient MapState<Long, List<Event>> queue;
    private transient ValueState<double[]> window;
    private long late;

    public KeyedWindowRule(Workloads w) {
        this.w = w;
    }

    @Override
    public void open(org.apache.flink.api.common.functions.OpenContext openContext) {
        TypeInformation<List<Event>> listType = new ListTypeInfo<>(TypeInformation.of(Event.class));
        queue = getRuntimeContext().getMapState(new MapStateDescriptor<>("queue", Types.LONG, listType));
        window = getRuntimeContext().getState(new ValueStateDescriptor<>("window", PrimitiveArrayTypeInfo.DOUBLE_PRIMITIVE_ARRAY_TYPE_INFO));
    }

    @Override
    public void processElement(Event e, Context ctx, Collector<String> out) throws Exception {
        long t = e.time;
        if (t <= ctx.timerService().currentWatermark()) {
            late++;
            return;
        }
        List<Event> list = queue.get(t);
        if (list == null) list = new java.util.ArrayList<>(1);
        list.add(e);
        queue.put(t, list);
        ctx.timerService().registerEventTimeTimer(t);
    }

    @Override
    public void onTimer(long t, OnTimerContext ctx, Collector<String> out) throws Exception {
        // Timers of one key fire in timestamp order, so each timer releases exactly its own timestamp.
        List<Event> due = queue.get(t);
        if (due == null) return;
        queue.remove(t);
        double[] b = window.value();
        long slide = w.kaSlideMs;
        long low = Math.floorDiv(t, slide) * slide + slide - w.kaSizeMs;
        long start = Math.floorDiv(t, slide) * slide;
        b = dropBelow(b, low);
        for (Event e : due) {
            double v;
            if (w.kaSum) {
                if (Double.isNaN(e.amount)) continue; // Portrait skips an event without a numeric field
                v = e.amount;
            } else {
                v = 1;
            }
            int n = b == null ? 0 : b.length;
            if (n > 0 && b[n - 3] == start) {
                b[n - 2] += v;
                b[n - 1] += 1;
            } else {
                double[] grown = new double[n + 3];
                if (n > 0) System.arraycopy(b, 0, grown, 0, n);
                grown[n] = start;
                grown[n + 1] = v;
                grown[n + 2] = 1;
                b = grown;
            }
            double value = 0;
            for (int i = 0; i < b.length; i += 3) value += w.kaSum ? b[i + 1] : b[i + 2];
            if (Workloads.compare(value, w.kaOp, w.kaThreshold)) out.collect(Output.aggregate(w.kaId, ctx.getCurrentKey(), t, value));
        }
        if (b == null) window.clear();
        else window.update(b);
    }

    private static double[] dropBelow(double[] b, long low) {
        if (b == null) return null;
        int i = 0;
        while (i < b.length && b[i] < low) i += 3;
        if (i == 0) return b;
        if (i == b.length) return null;
        double[] rest = new double[b.length - i];
        System.arraycopy(b, i, rest, 0, rest.length);
        return rest;
    }

    @Override
    public void close() {
        if (late > 0) System.err.println(w.kaId + ": late events dropped: " + late);
    }
}
