/**
 * The Node.js flags Portrait's processes run with (`npm start`, the
 * `portrait` command's first line, the benchmarks). A young generation of
 * 64 MiB semi-spaces rather than Node's 16 MiB: the engine makes many
 * short-lived objects (decisions, partial matches, decoded events) and, with
 * the small default, a share of them is still alive at each scavenge and
 * copied, or promoted to the old generation. Costs up to 128 MiB more memory.
 * Node reads these only at start-up: keep the three places in step.
 */
export const NODE_FLAGS: ReadonlyArray<string> = ['--max-semi-space-size=64'];
