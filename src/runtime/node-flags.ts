/**
 * The Node.js flags of Portrait's batch processes: file replays and the
 * engine benchmarks (`bench/engine-*`, the Flink comparison). A young
 * generation of 64 MiB semi-spaces rather than Node's 16 MiB: the engine makes
 * many short-lived objects (decisions, partial matches, decoded events) and,
 * with the small default, a share of them is still alive at each scavenge and
 * copied, or promoted to the old generation (a replay with 1,000 rules took
 * 0.93x the CPU). Costs up to 128 MiB more memory.
 *
 * The server (`portrait serve`, `npm start`) keeps Node's default young
 * generation (see {@link SERVER_NODE_FLAGS} for its own flag): there a
 * scavenge is a pause every request in flight waits out, and with 64 MiB
 * semi-spaces they took 13-20 ms instead of 9-11 ms and `POST /v1/decide` at
 * 1,000 requests/s had a p99 of 35 ms instead of 27 ms (median of five
 * alternating runs each). Node reads these flags only at start-up: pass them
 * (or `NODE_OPTIONS`) when you start a replay yourself.
 */
export const BATCH_NODE_FLAGS: ReadonlyArray<string> = ['--max-semi-space-size=64'];

/**
 * The Node.js flags of the server (`portrait serve`, `npm start`, the serving
 * benchmarks): concurrent marking, the background part of a full garbage
 * collection, on one thread. Node gives V8 four background threads whatever
 * the machine, and a full collection marks on all of them at once: on two
 * cores they took the core the event loop runs on for 50-130 ms, and every
 * request in that stretch waited. With `POST /v1/decide` at 1,000 requests/s
 * and 100 rules on 2 cores, the p99 seen by the client went from 15.1-20.2 ms
 * to 6.9-8.5 ms (alternating runs, docs/benchmarks.md). On a larger machine a
 * full collection then marks for longer in the background (not measured
 * there).
 * V8 reads the flag only at start-up: `npm start` passes it, and `portrait
 * serve` started without it says so (a first line of `env -S node FLAG` would
 * not run where `env` has no `-S`, as BusyBox's); a program that calls
 * `startServer` itself passes it to its own `node`.
 */
export const SERVER_NODE_FLAGS: ReadonlyArray<string> = ['--concurrent-marking-max-worker-num=1'];

/** The flags of {@link SERVER_NODE_FLAGS} that `execArgv` does not set (V8 reads `_` and `-` in a flag's name alike). */
export function missingServerNodeFlags(execArgv: ReadonlyArray<string> = process.execArgv): string[] {
  const nameOf = (arg: string): string => arg.split('=')[0]!.replaceAll('_', '-');
  const given = new Set(execArgv.map(nameOf));
  return SERVER_NODE_FLAGS.filter((flag) => !given.has(nameOf(flag)));
}
