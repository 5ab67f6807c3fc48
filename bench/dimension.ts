// What every dimension of the bench (latency, CPU per host, scale, bastion, prune) gets from run.ts
// and gives back: one markdown table with medians, min–max and ratios, the goals it decides, and why
// a run failed.
import type { Goal } from "./report.js";
import type { Tools } from "./tools.js";

export interface BenchContext {
  /** The bench's scratch directory (removed at exit); each dimension makes its own subdirectory. */
  readonly work: string;
  readonly repoRoot: string;
  readonly tools: Tools;
  /** Root: the agent runs as root through `sudo -n`, as on a real fleet. */
  readonly asRoot: boolean;
  /** How to start the bare ssh2 floor (bench/floor.ts bundled): argv before its spec. */
  readonly floorCommand: readonly string[];
  /** The self-contained ping payload (bench/payload.ts) the OpenSSH-based runners send. */
  readonly payloadFile: string;
  readonly connectTimeoutS: number;
  /** Where Ansible's per-task temp directories go on the hosts (removed at exit). */
  readonly ansibleRemoteTmp: string;
  /** Progress for the operator, on stderr. */
  log(line: string): void;
}

export interface DimensionResult {
  /** The heading of its table, e.g. "Bastion: 200 hosts behind one proxy_jump bastion". */
  readonly title: string;
  /** A markdown table: every row a median over timed rounds, with min–max and a ratio column. */
  readonly table: string;
  /** The goals this dimension decides (met, missed with by how much, or not measured). */
  readonly goals: readonly Goal[];
  /** How it was measured, in a few sentences: what is timed, what is counted, what stands in for what. */
  readonly method: string;
  /** Runs that did not do the work on every host, and anything left behind: each fails the bench. */
  readonly failures: readonly string[];
}

export type Dimension = (ctx: BenchContext) => Promise<DimensionResult>;
