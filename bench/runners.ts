// The four ways of doing the same work on every host, each as a command the bench times, and a check
// afterwards that every host really did it.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BenchContext } from "./dimension.js";
import type { Fleet, FleetHost } from "../test/integration/harness/fleet.js";
import { writeInventory } from "../test/integration/helpers/test-fleet.js";

export type RunnerId = "rlvm-fleet" | "ansible" | "parallel-ssh" | "floor";

export const RUNNER_LABELS: Record<RunnerId, string> = {
  "rlvm-fleet": "rlvm-fleet ping",
  ansible: "Ansible script",
  "parallel-ssh": "parallel-ssh -I",
  floor: "bare ssh2 floor",
};

export interface RunSetup {
  /** The command to time; stdin is `stdinFile` or /dev/null. */
  argv: string[];
  env?: NodeJS.ProcessEnv;
  stdinFile?: string;
  /** Throws (with a reason) unless every host did the work; runs after the command exited. */
  verify(code: number | null, stdoutFile: string, stderrFile: string): void;
  /** Runs after verify, outside the timing (e.g. closes Ansible's ControlPersist masters). */
  after?(): void;
}

export interface Runner {
  id: RunnerId;
  /** A fresh setup per run: its own report file, control path directory and so on. */
  prepare(runDir: string): RunSetup;
}

export interface RunnerContext {
  fleet: Fleet;
  /** Working directory of this fleet size (removed afterwards). */
  dir: string;
  repoRoot: string;
  /** The self-contained payload (bench/payload.ts), as a file. */
  payloadFile: string;
  /** How to start the floor runner (bench/floor.ts bundled to plain JavaScript): argv before its spec. */
  floorCommand: string[];
  /** Absolute paths of the tools, when found. */
  tools: { ansiblePlaybook?: string; parallelSsh?: string; ssh: string };
  connectTimeoutS: number;
  /**
   * Root: the agent runs as root through `sudo -n` (the comparison the bench is for). Otherwise the
   * harness's sshd runs unprivileged and only logs in the current user, without sudo.
   */
  asRoot: boolean;
  /** Where Ansible's per-task temp directories go on the hosts (created by the login user; removed at the end). */
  ansibleRemoteTmp: string;
  /**
   * The bastion every host of `fleet` is reached through (itself not one of them), logged in to as
   * fleet.loginUser with the fleet's key, its host key in fleet.knownHostsFile. Unset: direct.
   * rlvm-fleet, Ansible and parallel-ssh support it; the floor does not.
   */
  bastion?: FleetHost;
}

/** A dimension's runners' context: the bench's settings (BenchContext), this fleet and directory. */
export function runnerContext(
  ctx: BenchContext,
  fleet: Fleet,
  dir: string,
  extra: Pick<RunnerContext, "bastion"> = {},
): RunnerContext {
  return {
    fleet,
    dir,
    repoRoot: ctx.repoRoot,
    payloadFile: ctx.payloadFile,
    floorCommand: [...ctx.floorCommand],
    tools: ctx.tools,
    connectTimeoutS: ctx.connectTimeoutS,
    ansibleRemoteTmp: ctx.ansibleRemoteTmp,
    asRoot: ctx.asRoot,
    ...extra,
  };
}

// The agent's result event without an error code (protocol v2: src/agent/protocol.ts resultEvent).
const RESULT_OK = '"event":"result","code":null';

/** What every OpenSSH-based runner and the floor run on each host, the payload on its stdin. */
export function remoteCommand(asRoot: boolean): string {
  return asRoot ? "sudo -n bash -s" : "bash -s";
}

/** rlvm-fleet's argv for one bench run: every host at once, quiet, its JSON report written to `report`. */
export function rlvmFleetArgv(
  repoRoot: string,
  command: string,
  inventory: string,
  forks: number,
  report: string,
): string[] {
  return [
    process.execPath,
    join(repoRoot, "bin/rlvm-fleet.js"),
    command,
    "--inventory",
    inventory,
    "--forks",
    String(forks),
    "--quiet",
    "--format",
    "json",
    "--report",
    report,
  ];
}

/** The report an rlvm-fleet run wrote, or why there is none (its exit code and stderr's tail). */
export function readReport<T>(report: string, code: number | null, stderrFile: string): T {
  if (!existsSync(report)) throw new Error(`no report (exit ${code}): ${tail(stderrFile)}`);
  return JSON.parse(readFileSync(report, "utf8")) as T;
}

export function tail(file: string, chars = 1500): string {
  try {
    const text = readFileSync(file, "utf8");
    return text.length > chars ? `…${text.slice(-chars)}` : text;
  } catch {
    return "";
  }
}

/** ssh options every OpenSSH-based runner uses: host keys verified against the fleet's known_hosts. */
export function sshOptions(ctx: Pick<RunnerContext, "fleet" | "connectTimeoutS">): string[] {
  return [
    `UserKnownHostsFile=${ctx.fleet.knownHostsFile}`,
    "GlobalKnownHostsFile=/dev/null",
    "StrictHostKeyChecking=yes",
    "IdentitiesOnly=yes",
    "BatchMode=yes",
    `ConnectTimeout=${ctx.connectTimeoutS}`,
  ];
}

/**
 * What the OpenSSH-based runners add to reach a host through ctx.bastion: `-F FILE -o ProxyJump=…`.
 * ProxyJump makes ssh start a second ssh for the hop (`ssh -W [%h]:%p`) that gets none of the first
 * one's -o options, only its -F file: so the options both hops need (host key checking, key,
 * user) go into an ssh_config file of their own, and the bastion's key is verified as strictly as
 * the target's. The -F file also keeps ~/.ssh/config and /etc/ssh/ssh_config out of both hops.
 * ProxyJump stays on the command line, for the target hop alone (in the file the hop would jump
 * through itself).
 */
function jumpSshArgs(ctx: RunnerContext): string[] {
  if (ctx.bastion === undefined) return [];
  const file = join(ctx.dir, "jump_ssh_config");
  writeFileSync(
    file,
    [
      "Host *",
      ...sshOptions(ctx).map((o) => `  ${o.replace("=", " ")}`),
      `  IdentityFile ${ctx.fleet.clientKey.privateKeyPath}`,
      `  User ${ctx.fleet.loginUser}`,
      "",
    ].join("\n"),
  );
  return ["-F", file, "-o", `ProxyJump=${ctx.fleet.loginUser}@${ctx.bastion.address}:${ctx.bastion.port}`];
}

export function rlvmFleetRunner(ctx: RunnerContext): Runner {
  // `ping` reads no job, but every inventory host needs a valid ResticLVM config.
  const config = join(ctx.dir, "host.toml");
  writeFileSync(
    config,
    [
      "[standard_path.data]",
      'backup_source_path = "/srv/data"',
      "exclude_paths = []",
      "",
      "[[standard_path.data.repositories]]",
      'repo_path = "/srv/backups/data"',
      'password_file = "/etc/resticlvm/pw"',
      "prune_keep_last = 7",
      "",
    ].join("\n"),
  );
  // Through a bastion: a jump-only host with the defaults' user, key and known_hosts (README "Jump hosts").
  const bastion = ctx.bastion;
  const inventory = writeInventory(ctx.fleet, join(ctx.dir, "inventory.toml"), {
    defaults: {
      config,
      connect_timeout: ctx.connectTimeoutS,
      ...(bastion === undefined ? {} : { proxy_jump: "bastion" }),
    },
    ...(bastion === undefined
      ? {}
      : { extra: `[jump_hosts.bastion]\naddress = "${bastion.address}"\nport = ${bastion.port}\n` }),
  });
  const n = ctx.fleet.hosts.length;
  return {
    id: "rlvm-fleet",
    prepare(runDir) {
      const report = join(runDir, "report.json");
      return {
        argv: rlvmFleetArgv(ctx.repoRoot, "ping", inventory, n, report),
        verify(code, _stdout, stderr) {
          const doc = readReport<{
            summary: { ok: number; hosts: number };
            hosts: { name: string; status: string; facts: { user: string } | null; error: unknown }[];
          }>(report, code, stderr);
          const user = ctx.asRoot ? "root" : ctx.fleet.loginUser;
          const notOk = doc.hosts.filter((h) => h.status !== "ok" || h.facts?.user !== user);
          if (code !== 0 || doc.summary.ok !== n || notOk.length > 0) {
            throw new Error(
              `exit ${code}, ${doc.summary.ok}/${n} ok; first failure: ${JSON.stringify(notOk[0] ?? null)}`,
            );
          }
        },
      };
    },
  };
}

export function floorRunner(ctx: RunnerContext): Runner {
  if (ctx.bastion !== undefined) throw new Error("the floor connects directly only, not through a bastion");
  const spec = join(ctx.dir, "floor.json");
  writeFileSync(
    spec,
    JSON.stringify({
      hosts: ctx.fleet.hosts.map((h) => ({ name: h.name, address: h.address, port: h.port })),
      user: ctx.fleet.loginUser,
      privateKeyPath: ctx.fleet.clientKey.privateKeyPath,
      knownHostsFile: ctx.fleet.knownHostsFile,
      payloadPath: ctx.payloadFile,
      command: remoteCommand(ctx.asRoot),
    }),
  );
  const n = ctx.fleet.hosts.length;
  return {
    id: "floor",
    prepare() {
      return {
        argv: [...ctx.floorCommand, spec],
        verify(code, stdout, stderr) {
          const ok = readFileSync(stdout, "utf8")
            .split("\n")
            .filter((l) => / ok$/.test(l)).length;
          if (code !== 0 || ok !== n)
            throw new Error(`exit ${code}, ${ok}/${n} ok: ${tail(stdout)} ${tail(stderr)}`);
        },
      };
    },
  };
}

export function parallelSshRunner(ctx: RunnerContext): Runner {
  const hostsFile = join(ctx.dir, "pssh-hosts");
  writeFileSync(
    hostsFile,
    ctx.fleet.hosts.map((h) => `${ctx.fleet.loginUser}@${h.address}:${h.port}\n`).join(""),
  );
  const n = ctx.fleet.hosts.length;
  const extra = [
    ...jumpSshArgs(ctx),
    ...sshOptions(ctx).flatMap((o) => ["-o", o]),
    "-i",
    ctx.fleet.clientKey.privateKeyPath,
  ].join(" ");
  return {
    id: "parallel-ssh",
    prepare(runDir) {
      const outDir = join(runDir, "out");
      const errDir = join(runDir, "err");
      return {
        argv: [
          ctx.tools.parallelSsh as string,
          "-I",
          "-p",
          String(n),
          "-h",
          hostsFile,
          "-t",
          "0",
          "-o",
          outDir,
          "-e",
          errDir,
          "-x",
          extra,
          remoteCommand(ctx.asRoot),
        ],
        stdinFile: ctx.payloadFile,
        verify(code, stdout) {
          const files = existsSync(outDir) ? readdirSync(outDir) : [];
          const ok = files.filter((f) => readFileSync(join(outDir, f), "utf8").includes(RESULT_OK)).length;
          if (code !== 0 || ok !== n)
            throw new Error(`exit ${code}, ${ok}/${n} printed an ok result: ${tail(stdout)}`);
        },
      };
    },
  };
}

export function ansibleRunner(ctx: RunnerContext): Runner {
  const n = ctx.fleet.hosts.length;
  const base = join(ctx.dir, "ansible");
  mkdirSync(base, { recursive: true });
  const inventory = join(base, "inventory.ini");
  const common = [...jumpSshArgs(ctx), ...sshOptions(ctx).flatMap((o) => ["-o", o])].join(" ");
  writeFileSync(
    inventory,
    [
      "[bench]",
      ...ctx.fleet.hosts.map((h) => `${h.name} ansible_host=${h.address} ansible_port=${h.port}`),
      "",
      "[bench:vars]",
      `ansible_user=${ctx.fleet.loginUser}`,
      `ansible_ssh_private_key_file=${ctx.fleet.clientKey.privateKeyPath}`,
      `ansible_ssh_common_args='${common}'`,
      "ansible_python_interpreter=/usr/bin/python3",
      // Ansible's per-task temp directories on the hosts; removed after each task, the parent at the end.
      `ansible_remote_tmp=${ctx.ansibleRemoteTmp}`,
      "",
    ].join("\n"),
  );
  const playbook = join(base, "playbook.yml");
  writeFileSync(
    playbook,
    [
      "- hosts: bench",
      "  gather_facts: false",
      `  become: ${ctx.asRoot ? "true" : "false"}`,
      "  tasks:",
      "    - name: the agent's ping, run as root",
      `      ansible.builtin.script: ${ctx.payloadFile}`,
      "      args:",
      "        executable: /bin/bash",
      "",
    ].join("\n"),
  );
  // No ansible.cfg from /etc or the working directory, nothing written under ~/.ansible.
  const config = join(base, "ansible.cfg");
  writeFileSync(config, "[defaults]\n");
  return {
    id: "ansible",
    prepare(runDir) {
      // A control path directory of its own per run: no ControlPersist master from an earlier run is reused.
      const controlDir = join(runDir, "cp");
      mkdirSync(controlDir, { recursive: true });
      return {
        argv: [ctx.tools.ansiblePlaybook as string, "-i", inventory, playbook],
        env: {
          ...process.env,
          ANSIBLE_CONFIG: config,
          ANSIBLE_HOME: join(base, "home"),
          ANSIBLE_LOCAL_TEMP: join(runDir, "local-tmp"),
          ANSIBLE_FORKS: String(n),
          ANSIBLE_PIPELINING: "True",
          ANSIBLE_HOST_KEY_CHECKING: "True",
          ANSIBLE_SSH_CONTROL_PATH_DIR: controlDir,
          ANSIBLE_SSH_RETRIES: "0",
          ANSIBLE_TIMEOUT: String(ctx.connectTimeoutS),
          ANSIBLE_RETRY_FILES_ENABLED: "False",
          ANSIBLE_NOCOLOR: "1",
          ANSIBLE_DEPRECATION_WARNINGS: "False",
          // The script module asks for a pty (ssh -tt), which an unprivileged test sshd cannot give.
          ...(ctx.asRoot ? {} : { ANSIBLE_SSH_USETTY: "False" }),
        },
        verify(code, stdout) {
          const recap = readFileSync(stdout, "utf8").split("PLAY RECAP")[1] ?? "";
          const ok = recap
            .split("\n")
            .filter((l) => /:\s+ok=1\s+changed=\d+\s+unreachable=0\s+failed=0/.test(l)).length;
          if (code !== 0 || ok !== n) throw new Error(`exit ${code}, ${ok}/${n} ok: ${tail(stdout)}`);
        },
        after() {
          // Ansible's default ControlPersist=60s leaves a master per host running: close them now.
          for (const socket of existsSync(controlDir) ? readdirSync(controlDir) : []) {
            spawnSync(
              ctx.tools.ssh,
              ["-o", `ControlPath=${join(controlDir, socket)}`, "-O", "exit", "bench"],
              {
                stdio: "ignore",
                timeout: 5_000,
              },
            );
          }
          rmSync(controlDir, { recursive: true, force: true });
        },
      };
    },
  };
}
