// Defence in depth: whatever text comes back from a host, the secrets we know of never reach the
// report or the terminal, even if a tool on the host echoed them.
import { repositorySecrets } from "../config/rules.js";
import type { HostPlan } from "../plan/build-plan.js";

export function secretsOf(hostPlan: HostPlan, becomePassword: string | null): string[] {
  const urls = hostPlan.config.jobs.flatMap((job) =>
    job.repositories.flatMap((r) => [r.repo, ...r.copy_to.map((c) => c.repo)]),
  );
  const secrets = urls.flatMap(repositorySecrets);
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
