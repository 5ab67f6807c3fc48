// Defence in depth: whatever text comes back from a host, the secrets we know of never reach the
// report or the terminal, even if a tool on the host echoed them.
import { repositoriesOf } from "../config/model.js";
import { repositorySecrets } from "../config/rules.js";
import type { HostPlan } from "../plan/build-plan.js";

export function secretsOf(
  hostPlan: HostPlan,
  becomePassword: string | null,
  /** Repositories the host uses outside its config (those it maintains). */
  also: readonly string[] = [],
): string[] {
  const secrets = [...repositoriesOf(hostPlan.config), ...also].flatMap(repositorySecrets);
  if (becomePassword !== null && becomePassword !== "") secrets.push(becomePassword);
  // Longest first, so a secret containing another is masked whole.
  return [...new Set(secrets)].filter((s) => s.length >= 3).sort((a, b) => b.length - a.length);
}

export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) out = out.split(secret).join("***");
  return out;
}

/** Redact every string inside a JSON-like value. */
export function redactDeep<T>(value: T, secrets: readonly string[]): T {
  if (secrets.length === 0) return value;
  if (typeof value === "string") return redact(value, secrets) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, secrets)) as T;
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v, secrets)])) as T;
  }
  return value;
}

/*
 * Mask, then cut: a text kept to a bound is masked first, so that a secret across the cut is masked
 * whole. The caller keeps the bound plus `longestSecret` characters, so that a secret that begins
 * within the bound ends within what was kept. When what was kept is itself a piece of a longer text
 * (`cut`), a secret across the piece's edge is there only in part, which masking cannot see: that
 * part is dropped.
 */

/** How many characters more than its bound a buffer keeps so that it can be masked before it is cut. */
export function longestSecret(secrets: readonly string[]): number {
  return Math.max(0, ...secrets.map((s) => s.length));
}

/**
 * The start of `text`, masked, then cut to `max` characters. `cut`: `text` is itself the start of a
 * longer text; in the result, whether anything of that text is missing.
 */
export function maskThenKeepStart(
  text: string,
  secrets: readonly string[],
  max: number,
  cut: boolean,
): { text: string; cut: boolean } {
  let masked = redact(text, secrets);
  // A secret that began in the kept part may end past it: drop its unmasked start.
  if (cut) masked = masked.slice(0, masked.length - secretPiece(masked, secrets, "end"));
  return { text: masked.slice(0, max), cut: cut || masked.length > max };
}

/**
 * The end of `text`, masked, then cut to `max` characters. `cut`: `text` is itself the end of a longer
 * text; in the result, whether anything of that text is missing.
 */
export function maskThenKeepEnd(
  text: string,
  secrets: readonly string[],
  max: number,
  cut: boolean,
): { text: string; cut: boolean } {
  let masked = redact(text, secrets);
  // A secret that ended in the kept part may have begun before it: drop its unmasked end.
  if (cut) masked = masked.slice(secretPiece(masked, secrets, "start"));
  return { text: masked.slice(Math.max(0, masked.length - max)), cut: cut || masked.length > max };
}

/**
 * The length of the longest part of a secret, short of the whole, at this edge of `text`: the start
 * of a secret at its end, or the end of a secret at its start.
 */
function secretPiece(text: string, secrets: readonly string[], edge: "start" | "end"): number {
  let longest = 0;
  for (const secret of secrets) {
    for (let k = Math.min(secret.length - 1, text.length); k > longest; k--) {
      if (edge === "end" ? text.endsWith(secret.slice(0, k)) : text.startsWith(secret.slice(-k))) {
        longest = k;
        break;
      }
    }
  }
  return longest;
}
