package dev.portrait.bench.flink;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.serialization.SimpleStringEncoder;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.file.sink.FileSink;
import org.apache.flink.connector.file.src.FileSource;
import org.apache.flink.connector.file.src.reader.TextLineInputFormat;
import org.apache.flink.core.fs.Path;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.filesystem.bucketassigners.BasePathBucketAssigner;
import org.apache.flink.streaming.api.functions.sink.filesystem.rollingpolicies.OnCheckpointRollingPolicy;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * The Apache Flink baseline of Portrait's side-by-side benchmark:
 *
 * <pre>java -jar portrait-flink-baseline.jar w1|w2|w3|w4 INPUT OUTPUT_DIR [options]</pre>
 *
 * INPUT is canonical NDJSON (flavor "demo") or the Taobao CSV (".csv", flavor
 * "taobao"). OUTPUT_DIR receives part files of JSON lines (see {@link Output}).
 * Options: --state heap|rocksdb (default heap), --parallelism N (default: cores),
 * --checkpoint-interval-ms N (default 10000), --checkpoint-dir DIR, --managed-memory SIZE
 * (RocksDB's budget, default 512m as in a default 1728m task manager), --flavor
 * demo|taobao, --end-time MS (stream time at which W1 values are read; default:
 * the highest event time of INPUT, found by a pre-scan that is not timed).
 * Prints one JSON line of figures on stdout at the end.
 */
public final class Main {
    private Main() {}

    public static void main(String[] args) throws Exception {
        List<String> positional = new ArrayList<>();
        String state = "heap", flavor = null, checkpointDir = null, managedMemory = "512m";
        int parallelism = Runtime.getRuntime().availableProcessors();
        long checkpointMs = 10_000, endTime = Long.MIN_VALUE;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            switch (a) {
                case "--state": state = args[++i]; break;
                case "--parallelism": parallelism = Integer.parseInt(args[++i]); break;
                case "--checkpoint-interval-ms": checkpointMs = Long.parseLong(args[++i]); break;
                case "--checkpoint-dir": checkpointDir = args[++i]; break;
                case "--flavor": flavor = args[++i]; break;
                case "--end-time": endTime = Long.parseLong(args[++i]); break;
                case "--managed-memory": managedMemory = args[++i]; break;
                default:
                    if (a.startsWith("--")) usage("unknown option " + a);
                    positional.add(a);
            }
        }
        if (positional.size() != 3) usage("expected WORKLOAD INPUT OUTPUT_DIR");
        String workload = positional.get(0).toLowerCase();
        File input = new File(positional.get(1)).getAbsoluteFile();
        File output = new File(positional.get(2)).getAbsoluteFile();
        if (!workload.matches("w[1-4]")) usage("workload must be w1, w2, w3 or w4, got " + workload);
        if (!input.isFile()) usage("input " + input + " is not a file");
        if (!state.equals("heap") && !state.equals("rocksdb")) usage("--state must be heap or rocksdb, got " + state);
        boolean csv = input.getName().endsWith(".csv");
        if (flavor == null) flavor = csv ? "taobao" : "demo";
        Workloads w = Workloads.load(flavor);
        boolean stats = workload.equals("w1") || workload.equals("w4");
        if (stats && endTime == Long.MIN_VALUE) endTime = maxTime(input, csv);
        deleteTree(output);

        File cpDir = checkpointDir != null ? new File(checkpointDir) : Files.createTempDirectory("portrait-flink-cp").toFile();
        Configuration conf = new Configuration();
        conf.setString("state.backend.type", state.equals("heap") ? "hashmap" : "rocksdb");
        conf.setString("state.backend.incremental", "true");
        conf.setString("state.checkpoints.dir", cpDir.toURI().toString());
        conf.setString("execution.checkpointing.interval", checkpointMs + " ms");
        conf.setString("execution.checkpointing.mode", "EXACTLY_ONCE");
        conf.setString("pipeline.object-reuse", "true");
        conf.setString("rest.bind-port", "0");
        // Local execution gives RocksDB a small managed-memory budget (128 MiB over all slots): memtables then
        // flush constantly and writes stall. Give it what a default task manager (1728m process size) has: 512 MiB.
        conf.setString("taskmanager.memory.managed.size", managedMemory);
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(parallelism, conf);

        // One text file is one split: it is read (and parsed) by one source subtask; keyed work runs on `parallelism`.
        FileSource<String> source = FileSource.forRecordStreamFormat(new TextLineInputFormat(), new Path(input.toURI())).build();
        DataStream<Event> events = env.fromSource(source, WatermarkStrategy.noWatermarks(), "file")
                .setParallelism(1)
                .flatMap(new EventParser(csv)).name("parse").setParallelism(1)
                .assignTimestampsAndWatermarks(WatermarkStrategy.<Event>forBoundedOutOfOrderness(Duration.ofMillis(w.outOfOrdernessMs))
                        .withTimestampAssigner((e, ts) -> e.time))
                .name("watermarks").setParallelism(1);

        List<DataStream<String>> outputs = new ArrayList<>();
        if (stats) {
            Workloads wl = w;
            long end = endTime;
            outputs.add(events.keyBy(e -> e.userId).process(new UserStatistics(wl, end)).name("statistics"));
        }
        if (workload.equals("w2") || workload.equals("w4")) outputs.add(Sequences.build(events, w));
        if (workload.equals("w3") || workload.equals("w4")) {
            String keyField = w.kaKeyField;
            java.util.Set<String> types = w.kaTypes;
            outputs.add(events.filter(e -> types.contains(e.type) && e.field(keyField) != null).name("types " + w.kaId)
                    .keyBy(e -> e.userId + "|" + e.field(keyField))
                    .process(new KeyedWindowRule(w)).name(w.kaId));
        }
        DataStream<String> all = outputs.get(0);
        for (int i = 1; i < outputs.size(); i++) all = all.union(outputs.get(i));
        all.sinkTo(FileSink.forRowFormat(new Path(output.toURI()), new SimpleStringEncoder<String>("UTF-8"))
                .withBucketAssigner(new BasePathBucketAssigner<>())
                .withRollingPolicy(OnCheckpointRollingPolicy.build())
                .build()).name("output");

        long started = System.nanoTime();
        var result = env.execute("portrait-baseline-" + workload);
        double seconds = (System.nanoTime() - started) / 1e9;
        deleteTree(cpDir);
        System.out.println("{\"system\":\"flink\",\"workload\":\"" + workload + "\",\"state\":\"" + state + "\",\"parallelism\":" + parallelism
                + ",\"job_ms\":" + result.getNetRuntime() + ",\"wall_s\":" + String.format("%.3f", seconds) + (stats ? ",\"end_time\":" + endTime : "") + "}");
    }

    /** The highest event time in the input (W1 reads values at that stream time, as Portrait's stream time ends there). */
    static long maxTime(File input, boolean csv) throws IOException {
        long max = Long.MIN_VALUE;
        EventParser parser = new EventParser(csv);
        parser.open((org.apache.flink.api.common.functions.OpenContext) null);
        List<Event> one = new ArrayList<>(1);
        org.apache.flink.util.Collector<Event> collector = new org.apache.flink.util.Collector<>() {
            public void collect(Event e) { one.add(e); }
            public void close() {}
        };
        try (BufferedReader r = Files.newBufferedReader(input.toPath(), StandardCharsets.UTF_8)) {
            String line;
            while ((line = r.readLine()) != null) {
                one.clear();
                parser.flatMap(line, collector);
                for (Event e : one) max = Math.max(max, e.time);
            }
        }
        return max;
    }

    static void deleteTree(File f) {
        File[] children = f.listFiles();
        if (children != null) for (File c : children) deleteTree(c);
        f.delete();
    }

    static void usage(String message) {
        System.err.println(message);
        System.err.println("usage: java -jar portrait-flink-baseline.jar w1|w2|w3|w4 INPUT OUTPUT_DIR [--state heap|rocksdb] [--parallelism N] [--checkpoint-interval-ms N] [--checkpoint-dir DIR] [--managed-memory SIZE] [--flavor demo|taobao] [--end-time MS]");
        System.exit(2);
    }
}
