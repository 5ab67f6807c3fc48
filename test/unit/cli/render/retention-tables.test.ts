import { describe, expect, it } from "vitest";
import { makeStyle } from "../../../../src/cli/render/style.js";
import { renderPruneTable } from "../../../../src/cli/render/retention-tables.js";
import type { Report } from "../../../../src/report/report-schema.js";
import { hostResult, report } from "../../../helpers/report-fixture.js";

const style = makeStyle(false);
const paint = (status: string) => status;
const ID = "a".repeat(64);

function withRepositories(base: Report, repositories: Report["repositories"]): Report {
  return { ...base, repositories };
}

describe("renderPruneTable", () => {
  const action = (host: string, status: "ok" | "failed" | "planned", error: string | null = null) => ({
    action: "prune" as const,
    host,
    for_host: null,
    status,
    duration_ms: status === "planned" ? null : 1200,
    error,
  });
  const repository = (actions: Report["repositories"][number]["actions"], missing: string[] = []) => ({
    id: ID,
    url: "sftp:backup@vault:/fleet",
    hosts: [{ host: "h1", jobs: ["web"] }],
    actions,
    missing_forgets: missing,
  });

  it("names the host that pruned each repository, once, and whose forgets are missing", () => {
    const base = report("prune", [hostResult("h1", "ok"), hostResult("h2", "unreachable")]);
    const text = renderPruneTable(
      withRepositories(base, [repository([action("h1", "ok")], ["h2"])]),
      style,
      paint,
    );
    expect(text).toContain("pruned, once per repository, after every host's forgets:");
    expect(text).toContain(
      "  sftp:backup@vault:/fleet  on h1  ok in 1.2s; forgets missing (snapshots kept): h2",
    );
  });

  it("a dry run says which host would prune; a repository nobody forgot in is not pruned", () => {
    const base = report("prune", [hostResult("h1", "ok")], { dryRun: true });
    const text = renderPruneTable(
      withRepositories(base, [
        repository([action("h1", "planned")]),
        { ...repository([], ["h1"]), url: "/srv/r" },
      ]),
      style,
      paint,
    );
    expect(text).toContain("would prune, once per repository, after every host's forgets:");
    expect(text).toContain("  sftp:backup@vault:/fleet  on h1  planned\n");
    expect(text).toContain("  /srv/r  not pruned; forgets missing (snapshots kept): h1");
  });

  it("a failed prune shows restic's reason; without repositories there is no section", () => {
    const base = report("prune", [hostResult("h1", "failed")]);
    const failed = renderPruneTable(
      withRepositories(base, [repository([action("h1", "failed", "restic prune failed (exit 1): locked")])]),
      style,
      paint,
    );
    expect(failed).toContain("on h1  failed in 1.2s: restic prune failed (exit 1): locked");
    expect(renderPruneTable(base, style, paint)).not.toContain("once per repository");
  });
});
