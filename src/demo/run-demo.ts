// `rlvm-fleet demo`: a local fleet of three loopback hosts, and the commands an operator would run
// against it, each shown as it runs.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join, relative } from "node:path";
import { UsageError } from "../errors.js";
import { ensureDemoTools } from "./demo-tools.js";
import { startLocalFleet, type LocalFleet } from "./local-fleet.js";

export interface DemoOptions {
  dir: string;
  cwd: string;
  env: Record<string, string | undefined>;
  /** Run one rlvm-fleet command line, as the CLI would; returns its exit code. */
  run: (argv: string[]) => Promise<number>;
  say: (text: string) => void;
  onInterrupt: (handler: () => void) => () => void;
}

const MARKER = ".rlvm-fleet-demo";
const HOSTS = ["web1", "web2", "db1"];

export async function runDemo(options: DemoOptions): Promise<number> {
  const tools = ensureDemoTools({ env: options.env, root: userInfo().uid === 0, say: options.say });
  const dir = options.dir;
  prepareDirectory(dir);
  const shown = (path: string) => {
    const rel = relative(options.cwd, path);
    return rel.startsWith("..") ? path : rel;
  };

  options.say(`Starting 3 loopback hosts (one sshd each, as ${userInfo().username}) in ${shown(dir)} ...\n`);
  const fleet = await startLocalFleet({ dir, names: HOSTS, sshd: tools.sshd, sshKeygen: tools.sshKeygen });
  let interrupted = false;
  const removeHandler = options.onInterrupt(() => {
    interrupted = true;
  });
  try {
    for (const host of fleet.hosts) options.say(`  ${host.name}: sshd on ${host.address}:${host.port}\n`);
    const inventory = writeDemoFleet(dir, fleet, tools.restic);
    options.say(`Wrote ${shown(inventory)}, configs/ and restic repositories under repos/.\n`);

    const reports = join(dir, "reports");
    const steps: { argv: string[]; note: string }[] = [
      {
        argv: ["validate", "--inventory", inventory],
        note: "check the inventory and every config, without connecting",
      },
      {
        argv: ["check", "--inventory", inventory],
        note: "connect to every host and run the preflight; changes nothing",
      },
      {
        argv: ["backup", "--inventory", inventory, "--report", join(reports, "backup-1.json")],
        note: "the first backup: every file is new",
      },
      {
        argv: ["backup", "--inventory", inventory, "--report", join(reports, "backup-2.json")],
        note: "the second backup is incremental: files new 0",
      },
      {
        argv: ["status", "--inventory", inventory, "--max-age", "1h"],
        note: "the latest snapshot per host, job and repository",
      },
      {
        argv: [
          "prune",
          "--inventory",
          inventory,
          "--dry-run",
          "--report",
          join(reports, "prune-dry-run.json"),
        ],
        note: "what retention would remove; nothing is deleted",
      },
      {
        argv: ["prune", "--inventory", inventory, "--report", join(reports, "prune.json")],
        note: "retention for real: one host per repository forgets every host's snapshots there, then prunes it once",
      },
    ];
    for (const step of steps) {
      if (interrupted) break;
      options.say(
        `\n# ${step.note}\n$ rlvm-fleet ${step.argv.map((a) => (a.startsWith("/") ? shown(a) : a)).join(" ")}\n`,
      );
      const code = await options.run(step.argv);
      if (interrupted) break;
      if (code !== 0) {
        options.say(`\nThe demo stopped: that command exited ${code}. Its output above says why.\n`);
        return code;
      }
    }
    if (interrupted) {
      options.say("\nInterrupted: stopping the demo's sshd processes.\n");
      return 130;
    }
    options.say(
      [
        "",
        "The demo fleet backed up 3 hosts into a shared repository, copied them offsite, checked their freshness, and pruned each repository once.",
        `  demo directory:       ${shown(dir)}  (inventory.toml, configs/, repos/, hosts/)`,
        `  JSON report:          ${shown(join(reports, "backup-2.json"))}`,
        `  look into a repository: restic -r ${shown(join(dir, "repos", "main"))} --password-file ${shown(join(dir, "restic-password"))} snapshots`,
        "The sshd processes are stopped now; remove the directory when you are done.",
        "",
      ].join("\n"),
    );
    return 0;
  } finally {
    removeHandler();
    await fleet.stop();
  }
}

/** A fresh demo directory: an earlier demo's is replaced, anything else is refused. */
function prepareDirectory(dir: string): void {
  if (existsSync(dir)) {
    if (existsSync(join(dir, MARKER))) rmSync(dir, { recursive: true, force: true });
    else if (readdirSync(dir).length > 0) {
      throw new UsageError(`${dir} exists and is not a demo directory`, {
        hint: "pass --dir with a new or empty directory",
      });
    }
  }
  mkdirSync(join(dir, "reports"), { recursive: true });
  writeFileSync(join(dir, MARKER), "made by rlvm-fleet demo; `rlvm-fleet demo` replaces this directory\n");
}

/** Sample data, repositories, configs (one per ResticLVM format) and the inventory. */
function writeDemoFleet(dir: string, fleet: LocalFleet, restic: string): string {
  const password = join(dir, "restic-password");
  writeFileSync(password, "demo password: use a long random one in real life\n", { mode: 0o600 });
  const repos = { main: join(dir, "repos", "main"), offsite: join(dir, "repos", "offsite") };
  for (const repo of Object.values(repos)) {
    execFileSync(restic, ["init", "--repo", repo, "--password-file", password], { stdio: "ignore" });
  }
  mkdirSync(join(dir, "configs"), { recursive: true });
  for (const host of fleet.hosts) {
    const data = join(host.dir, "data");
    mkdirSync(join(data, "etc"), { recursive: true });
    mkdirSync(join(data, "www"), { recursive: true });
    writeFileSync(join(data, "etc", "app.conf"), `# ${host.name}\nlisten = ${host.address}\n`);
    writeFileSync(join(data, "www", "index.html"), `<h1>${host.name}</h1>\n`);
    for (let i = 1; i <= 20; i++)
      writeFileSync(join(data, "www", `page-${i}.html`), `<p>page ${i} of ${host.name}</p>\n`);
    writeFileSync(
      join(dir, "configs", `${host.name}.toml`),
      host.name === "db1" ? volumeConfig(data, repos, password) : categoryConfig(data, repos, password),
    );
  }
  const inventory = join(dir, "inventory.toml");
  writeFileSync(
    inventory,
    [
      "# The demo fleet: three loopback hosts. Every path is relative to this file.",
      "[defaults]",
      `user = ${JSON.stringify(fleet.user)}`,
      'become = "none"                 # the demo runs as you; real fleets use sudo',
      'identity_file = "client_key"',
      'known_hosts = "known_hosts"',
      'config = "configs/{host}.toml"',
      "connect_timeout = 10",
      "",
      "[groups.web]",
      'hosts = ["web1", "web2"]',
      "",
      "[groups.db]",
      'hosts = ["db1"]',
      "",
      ...fleet.hosts.flatMap((host) => [
        `[hosts.${host.name}]`,
        `address = "${host.address}"`,
        `port = ${host.port}`,
        "",
      ]),
    ].join("\n"),
  );
  return inventory;
}

function categoryConfig(data: string, repos: { main: string; offsite: string }, password: string): string {
  return `# A ResticLVM config in the category format. (db1.toml is written in the 0.10 volume format.)
[standard_path.data]
backup_source_path = ${JSON.stringify(data)}
exclude_paths = [${JSON.stringify(join(data, "www", "page-20.html"))}]

[[standard_path.data.repositories]]
repo_path = ${JSON.stringify(repos.main)}
password_file = ${JSON.stringify(password)}
prune_keep_last = 1
prune_keep_daily = 7

  [[standard_path.data.repositories.copy_to]]
  repo = ${JSON.stringify(repos.offsite)}
  password_file = ${JSON.stringify(password)}
  prune_keep_daily = 30
`;
}

function volumeConfig(data: string, repos: { main: string; offsite: string }, password: string): string {
  return `# A ResticLVM config in the 0.10 volume format.
[prune_policy.local]
keep_last = 1
keep_daily = 7

[prune_policy.offsite]
keep_daily = 30

[volume.data]
volume_type = "standard_path"
backup_source_path = ${JSON.stringify(data)}
exclude_paths = []

  [[volume.data.repositories]]
  repo_path = ${JSON.stringify(repos.main)}
  password_file = ${JSON.stringify(password)}
  prune_policy = "local"

    [[volume.data.repositories.copy_to]]
    repo = ${JSON.stringify(repos.offsite)}
    password_file = ${JSON.stringify(password)}
    prune_policy = "offsite"
`;
}
