import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UsageError } from "../../../src/errors.js";
import { loadInventory } from "../../../src/inventory/load-inventory.js";
import { selectHosts } from "../../../src/inventory/select-hosts.js";
import { writeTree } from "../../helpers/run-cli.js";

const tree = writeTree({
  "inventory.toml": `
[defaults]
config = "c.toml"
[groups.web]
hosts = ["web1", "web2", "web3"]
[groups.db]
hosts = ["db1", "db2"]
[groups.eu]
hosts = ["web1", "db1"]
[groups.prod]
children = ["web", "db"]
[hosts.web1]
[hosts.web2]
[hosts.web3]
[hosts.db1]
[hosts.db2]
[hosts.db3]
`,
});
afterAll(() => tree.cleanup());
const loaded = loadInventory(join(tree.dir, "inventory.toml"));
if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
const inventory = loaded.inventory;
const select = (pattern?: string) => selectHosts(inventory, pattern).map((h) => h.name);

describe("--limit", () => {
  it.each([
    [undefined, ["web1", "web2", "web3", "db1", "db2", "db3"]],
    ["all", ["web1", "web2", "web3", "db1", "db2", "db3"]],
    ["web", ["web1", "web2", "web3"]],
    ["db1,db2", ["db1", "db2"]],
    ["db1:web2", ["web2", "db1"]],
    ["web*", ["web1", "web2", "web3"]],
    // As in Ansible: a trailing [N], [-N], [N:M], [N:] is a position in what precedes it.
    ["db[1]", ["db2"]],
    ["web[0:1]", ["web1", "web2"]],
    ["web[-1]", ["web3"]],
    ["prod[3:]", ["db1", "db2"]],
    ["db[12]*", ["db1", "db2"]],
    ["db[!1]", ["db2", "db3"]],
    ["ungrouped", ["db3"]],
    ["~web[12]", ["web1", "web2"]],
    ["web db", ["web1", "web2", "web3", "db1", "db2"]],
    ["all:!db3", ["web1", "web2", "web3", "db1", "db2"]],
    ["!db3", ["web1", "web2", "web3", "db1", "db2"]],
    ["web:&eu", ["web1"]],
    ["prod:!web2", ["web1", "web3", "db1", "db2"]],
    ["prod:&eu:!db1", ["web1"]],
    ["&eu", ["web1", "db1"]],
  ])("%s selects %j", (pattern, expected) => {
    expect(select(pattern)).toEqual(expected);
  });

  it("refuses a position past the group's end, as Ansible does", () => {
    expect(() => select("db[12]")).toThrow(/no host at the position "db\[12\]" names/);
    // With a comma, Ansible splits on commas only: "db1:db2" is one name, and matches nothing.
    expect(() => select("web1, db1:db2")).toThrow(UsageError);
  });

  it("refuses a name that matches nothing, with a did-you-mean", () => {
    expect(() => select("web4,prd")).toThrow(UsageError);
    try {
      select("web4,prd");
    } catch (error) {
      const messages = (error as UsageError).problems.map((p) => p.message);
      expect(messages).toEqual([
        '--limit: "web4" matches no host or group (did you mean "web1"?)',
        '--limit: "prd" matches no host or group (did you mean "prod"?)',
      ]);
    }
  });
});
