const UNITS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** Pattern of a duration string: an integer and a unit (`500ms`, `30s`, `15m`, `1h`, `30d`, `2w`). */
export const DURATION_PATTERN = '^[1-9][0-9]{0,9}(ms|s|m|h|d|w)$';

const DURATION = new RegExp(DURATION_PATTERN);

/**
 * Parses a duration: a string such as `15m` or a positive number of
 * milliseconds. Returns undefined when the value is not a duration.
 */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  if (typeof value !== 'string' || !DURATION.test(value)) return undefined;
  const unit = /[a-z]+$/.exec(value)![0];
  return Number(value.slice(0, value.length - unit.length)) * UNITS[unit]!;
}

/** Formats milliseconds as the largest exact unit, e.g. 3600000 → `1h`. */
export function formatDuration(ms: number): string {
  for (const unit of ['w', 'd', 'h', 'm', 's']) {
    const size = UNITS[unit]!;
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
