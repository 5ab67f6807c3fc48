// Durations as operators write them: "6h", "90m", "1h30m", "7d", "45s" (or a number of seconds).

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
const DURATION = /^(?:\d+(?:\.\d+)?[smhdw])+$/;

/** Seconds, or undefined when the text is not a duration. */
export function parseDuration(text: string | number): number | undefined {
  if (typeof text === "number") return Number.isFinite(text) && text > 0 ? text : undefined;
  const trimmed = text.trim();
  if (/^\d+(?:\.\d+)?$/.test(trimmed)) return parseDuration(Number(trimmed));
  if (!DURATION.test(trimmed)) return undefined;
  let seconds = 0;
  for (const [, amount, unit] of trimmed.matchAll(/(\d+(?:\.\d+)?)([smhdw])/g)) {
    seconds += Number(amount) * (UNIT_SECONDS[unit ?? "s"] ?? 1);
  }
  return seconds > 0 ? seconds : undefined;
}

/** Compact human form: 93784 → "1d2h3m", 45 → "45s". */
export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)}s`;
  let rest = Math.round(seconds);
  let out = "";
  for (const [unit, size] of [
    ["d", 86400],
    ["h", 3600],
    ["m", 60],
  ] as const) {
    const amount = Math.floor(rest / size);
    if (amount > 0) out += `${amount}${unit}`;
    rest -= amount * size;
    if (out.length > 0 && unit === "m") break;
  }
  return out || "0s";
}
