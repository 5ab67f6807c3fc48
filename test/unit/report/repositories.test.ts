import { describe, expect, it } from "vitest";
import { groupRepositories, type RepositoryUse } from "../../../src/report/repositories.js";
import { reportSchema } from "../../../src/report/report-schema.js";
import { reportInput } from "../../helpers/report-fixture.js";
import { buildReport } from "../../../src/report/build-report.js";

const ID_1 = "1".repeat(64);
const ID_2 = "2".repeat(64);

const local = (host: string, path: string, id: string | null, job = "web"): RepositoryUse => ({
  host,
  job,
  label: path,
  local: true,
  location: path,
  id,
  entry: "r1",
  retention: true,
  forget: null,
  prune: null,
  read: null,
});
const remote = (host: string, url: string, id: string | null, job = "web"): RepositoryUse => ({
  host,
  job,
  label: url,
  local: false,
  location: url,
  id,
  entry: "r1",
  retention: true,
  forget: null,
  prune: null,
  read: null,
});

describe("repositories[]", () => {
  it("makes entries with one restic id one repository, whatever their URLs", () => {
    const entries = groupRepositories([
      remote("b", "sftp:backup@vault:/fleet", ID_1),
      remote("a", "sftp://backup@vault//fleet", ID_1, "etc"),
      local("a", "/srv/repo", ID_1, "web"),
    ]);
    expect(entries).toEqual([
      {
        id: ID_1,
        url: "/srv/repo",
        hosts: [
          { host: "a", jobs: ["etc", "web"] },
          { host: "b", jobs: ["web"] },
        ],
        actions: [],
        missing_forgets: [],
      },
    ]);
  });

  it("keeps local paths without an id apart per host, even when spelled alike", () => {
    const entries = groupRepositories([local("b", "/srv/repo", null), local("a", "/srv/repo", null)]);
    expect(entries.map((e) => [e.id, e.url, e.hosts.map((h) => h.host)])).toEqual([
      [null, "/srv/repo", ["a"]],
      [null, "/srv/repo", ["b"]],
    ]);
  });

  it("makes one remote URL without an id one entry", () => {
    const entries = groupRepositories([
      remote("a", "rest:https://vault/fleet", null),
      remote("b", "rest:https://vault/fleet", null, "db"),
    ]);
    expect(entries).toEqual([
      {
        id: null,
        url: "rest:https://vault/fleet",
        hosts: [
          { host: "a", jobs: ["web"] },
          { host: "b", jobs: ["db"] },
        ],
        actions: [],
        missing_forgets: [],
      },
    ]);
  });

  it("puts a use whose id is unknown with the id read at the same place", () => {
    const entries = groupRepositories([
      remote("a", "rest:https://vault/fleet", ID_1),
      remote("down", "rest:https://vault/fleet", null),
      local("a", "/srv/repo", ID_2),
      // Another host's path of the same spelling is not known to be that repository.
      local("down", "/srv/repo", null),
    ]);
    expect(entries.map((e) => [e.id, e.url, e.hosts.map((h) => h.host)])).toEqual([
      [null, "/srv/repo", ["down"]],
      [ID_2, "/srv/repo", ["a"]],
      [ID_1, "rest:https://vault/fleet", ["a", "down"]],
    ]);
  });

  it("keeps two repositories behind one URL apart when their ids differ", () => {
    const entries = groupRepositories([
      remote("a", "b2:bucket:fleet", ID_2),
      remote("b", "b2:bucket:fleet", ID_1),
      remote("c", "b2:bucket:fleet", null),
    ]);
    expect(entries.map((e) => [e.id, e.hosts.map((h) => h.host)])).toEqual([
      [null, ["c"]],
      [ID_1, ["b"]],
      [ID_2, ["a"]],
    ]);
  });

  it("is in the report, which its schema accepts; a run without repositories has none", () => {
    const input = reportInput("check", []);
    const report = reportSchema.parse(
      buildReport({ ...input, repositories: [local("a", "/srv/repo", ID_1)] }),
    );
    expect(report.repositories).toHaveLength(1);
    expect(reportSchema.parse(buildReport(reportInput("ping", []))).repositories).toEqual([]);
    expect(() =>
      reportSchema.parse({ ...report, repositories: [{ ...report.repositories[0], id: "abc" }] }),
    ).toThrow();
  });
});
