/**
 * The Node.js flags of Portrait's batch processes: file replays and the
 * engine benchmarks (`bench/engine-*`, the Flink comparison). A young
 * generation of 64 MiB semi-spaces rather than Node's 16 MiB: the engine makes
 * many short-lived objects (decisions, partial matches, decoded events) and,
 * with the small default, a share of them is still alive at each scavenge and
 * copied, or promoted to the old generation (a replay with 1,000 rules took
 * 0.93x the CPU). Costs up to 128 MiB more memory.
 *
 * The server (`portrait serve`, `npm start`) runs with Node's default: there a
 * scavenge is a pause every request in flight waits out, and with 64 MiB
 * semi-spaces they took 13-20 ms instead of 9-11 ms and `POST /v1/decide` at
 * 1,000 requests/s had a p99 of 35 ms instead of 27 ms (median of five
 * alternating runs each). Node reads these flags only at start-up: pass them
 * (or `NODE_OPTIONS`) when you start a replay yourself.
 */
export const BATCH_NODE_FLAGS: ReadonlyArray<string> = ['--max-semi-space-size=64'];
