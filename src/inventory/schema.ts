// The inventory file, strictly: every key of DESIGN §3 and nothing else.
import { z } from "zod";
import { absolutePath, isName, NAME_RULE, repository } from "../config/rules.js";
import { parseDuration } from "../duration.js";
import { PLAN_LIMITS } from "../agent/protocol.js";

const localPath = z.string().min(1, "expected a path");
const seconds = z.number().positive("expected a number of seconds > 0");
const duration = z.union([z.string(), z.number()]).refine((value) => parseDuration(value) !== undefined, {
  message: 'expected a duration such as "30m", "6h", "1h30m" or a number of seconds',
});

// One hop: an inventory name or `[user@]host[:port]`; never something that could pass for an option.
const jumpElement = z
  .string()
  .regex(
    /^(?:[A-Za-z_][A-Za-z0-9_.-]*@)?(?:[A-Za-z0-9_.%][A-Za-z0-9_.%-]*|\[[0-9A-Fa-f:.%]+\])(?::\d{1,5})?$/,
    'expected an inventory name or "[user@]host[:port]"',
  );

/** The settings that defaults, group vars and hosts may set. */
export const hostSettings = {
  user: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_.-]*\$?$/, "expected a login name (letters, digits, _ . -)")
    .optional(),
  port: z.number().int("expected a whole number").min(1).max(65535).optional(),
  identity_file: localPath.optional(),
  identity_passphrase_file: localPath.optional(),
  known_hosts: localPath.optional(),
  host_key_policy: z
    .enum(["strict", "accept-new"], { error: () => 'expected "strict" or "accept-new"' })
    .optional(),
  // ssh-dss and SHA-1 ssh-rsa host keys, refused by default as OpenSSH 9 refuses them.
  legacy_host_key_algorithms: z.boolean({ error: () => "expected true or false" }).optional(),
  become: z.enum(["sudo", "none"], { error: () => 'expected "sudo" or "none"' }).optional(),
  become_password_file: localPath.optional(),
  // "installed": run the agent install-agent put on the host (sudo -n on that one file), no upload.
  agent: z.enum(["upload", "installed"], { error: () => 'expected "upload" or "installed"' }).optional(),
  connect_timeout: seconds.optional(),
  connect_retries: z.number().int("expected a whole number").min(0).max(10).optional(),
  keepalive_interval: z.number().min(0, "expected seconds ≥ 0 (0 turns keepalives off)").optional(),
  run_timeout: duration.optional(),
  // On the host, root-only: must be absolute there, it is not relative to anything here.
  restic_env_file: absolutePath.optional(),
  // backup: files per job restored from the snapshot just written and compared with its source (0: off).
  verify_sample: z
    .number()
    .int("expected a whole number")
    .min(0)
    .max(PLAN_LIMITS.maxRestoreSample, `expected at most ${PLAN_LIMITS.maxRestoreSample} files`)
    .optional(),
  config: localPath.optional(),
  // true: ssh's own config (~/.ssh/config); a path: that file; resolved per host with `ssh -G`.
  ssh_config: z
    .custom<boolean | string>((v) => typeof v === "boolean" || (typeof v === "string" && v !== ""), {
      message: "expected true, false or the path of an ssh_config file",
    })
    .optional(),
  // A bastion, or a chain (outermost first): inventory names or `[user@]host[:port]`.
  proxy_jump: z
    .union([jumpElement, z.array(jumpElement).min(1, "expected at least one jump host")], {
      error: () => 'expected a jump host ("bastion", "user@host:port") or a list of them',
    })
    .optional(),
};

export type HostSettingsInput = z.infer<z.ZodObject<typeof hostSettings>>;
export type SettingKey = keyof typeof hostSettings;
export const SETTING_KEYS = Object.keys(hostSettings) as SettingKey[];

const name = (what: string) => z.string().refine(isName, `a ${what} name ${NAME_RULE}`);

// A hostname, an IPv4 or an IPv6 address; never something an option parser could take for a flag.
const address = z
  .string()
  .regex(/^[A-Za-z0-9_.:%][A-Za-z0-9_.:%-]*$/, "expected a hostname or an IP address");

export const groupSchema = z.strictObject({
  hosts: z.array(name("host")).optional(),
  children: z.array(name("group")).optional(),
  vars: z.strictObject(hostSettings).optional(),
});

export const hostSchema = z.strictObject({ address: address.optional(), ...hostSettings });

/** What a jump-only host may set: how to connect to it, nothing that runs there. */
export const JUMP_HOST_KEYS = [
  "user",
  "port",
  "identity_file",
  "identity_passphrase_file",
  "known_hosts",
  "host_key_policy",
  "legacy_host_key_algorithms",
  "connect_timeout",
  "connect_retries",
  "keepalive_interval",
  "proxy_jump",
] as const satisfies readonly SettingKey[];

export const jumpHostSchema = z.strictObject({
  address: address.optional(),
  ...Object.fromEntries(JUMP_HOST_KEYS.map((key) => [key, hostSettings[key]])),
} as { address: z.ZodOptional<z.ZodString> } & Pick<typeof hostSettings, (typeof JUMP_HOST_KEYS)[number]>);

/**
 * A repository the fleet shares, maintained on one host: its forgets and its prune run there, so the
 * hosts that back up into it need only append-only credentials. The files are on the maintenance host.
 */
export const repositoryDeclarationSchema = z.strictObject({
  // As the hosts' configs name it: matched against their repositories and copy destinations.
  url: repository,
  maintenance_host: name("host"),
  // How the maintenance host reaches it (another endpoint or user with delete rights); the same
  // repository, which the controller checks by restic's id before it maintains anything.
  maintenance_url: repository.optional(),
  password_file: absolutePath,
  env_file: absolutePath.optional(),
});

export const inventorySchema = z.strictObject({
  defaults: z.strictObject(hostSettings).optional(),
  groups: z.record(z.string(), groupSchema).optional(),
  hosts: z.record(z.string(), hostSchema),
  jump_hosts: z.record(z.string(), jumpHostSchema).optional(),
  repositories: z.record(z.string(), repositoryDeclarationSchema).optional(),
});

export type InventoryInput = z.infer<typeof inventorySchema>;
