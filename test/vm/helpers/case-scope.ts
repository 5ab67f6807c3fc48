// Which cases a guest runs: bookworm runs every case, trixie only the core LVM cases (issue 18).
// One case function per file serves both guests, so no case is copied; a case outside the scope is
// not registered at all (neither run nor reported as skipped).
import { it } from "vitest";

/** "full": every case; "core": lv_nonroot, lv_root, overflow, controller SIGKILL, orphan sweep. */
export type CaseScope = "full" | "core";

type Case = (name: string, body: () => Promise<void>, timeoutMs?: number) => void;

/** `it` for the cases that only the full tier runs: registered in the full scope, absent in core. */
export function fullOnly(scope: CaseScope): Case {
  return scope === "full" ? it : () => undefined;
}
