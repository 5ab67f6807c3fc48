// The options a run was started with, as its report records them (`options` in the JSON report).
import { z } from "zod";

export const reportOptionsSchema = z.object({
  /** The inventory file as given on the command line. */
  inventory: z.string(),
  limit: z.string().nullable(),
  forks: z.number().int().positive(),
  /** --category and --name, comma lists split; empty when not given (or not taken by the command). */
  category: z.array(z.string()),
  name: z.array(z.string()),
  dry_run: z.boolean(),
  /** status --max-age in seconds; null when not given. */
  max_age_s: z.number().positive().nullable(),
  /** --serial as given ("2" or "25%"), --max-fail-percent and --splay in seconds; null when not given. */
  serial: z.string().nullable(),
  max_fail_percent: z.number().min(0).max(100).nullable(),
  splay_s: z.number().positive().nullable(),
  /** --shard K/N; null when not given (and in a merged report: it covers every shard merged). */
  shard: z.strictObject({ k: z.number().int().positive(), n: z.number().int().positive() }).nullable(),
});

export type ReportOptions = z.infer<typeof reportOptionsSchema>;
