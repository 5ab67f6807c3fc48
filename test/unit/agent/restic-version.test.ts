// What the agent does differently per restic version (agents/src/restic-version.sh), each function run
// on restic 0.14 and 0.18 (and the versions in between where it matters): the real built agent, with its
// `main "$@"` replaced by a few lines that call one function; restic is a fake that records its argv
// and answers as the version under test does (its exit status and stderr).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { RESTIC_FAILURE_CODES } from "../../../src/agent/protocol.js";

const AGENT = fileURLToPath(new URL("../../../agents/rlvm-agent.sh", import.meta.url));
const base = mkdtempSync(join(tmpdir(), "rlvm-restic-version-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));

// restic's own words, as 0.14.0 and 0.18.0 print them (the cases of the integration tier).
const MISSING =
  "Fatal: unable to open config file: stat /srv/r/config: no such file or directory\nIs there a repository at the following location?\n/srv/r";
const WRONG_PASSWORD = "Fatal: wrong password or no key found";
const LOCKED =
  "unable to create lock in backend: repository is already locked exclusively by PID 7587 on vm by root (UID 0, GID 0)\nlock was created at 2026-12-03 05:34:51 (1.5s ago)\nstorage ID a41a7d30\nthe `unlock` command can be used to remove stale locks";

let counter = 0;

/** Run the agent's functions: SNIPPET replaces `main "$@"`, with RESTIC_VERSION set. */
function agent(version: string, snippet: string): { stdout: string; stderr: string; status: number | null } {
  const text = readFileSync(AGENT, "utf8");
  const tail = '\nmain "$@"\n}\n';
  if (!text.endsWith(tail)) throw new Error("the built agent no longer ends with main");
  counter += 1;
  const script = join(base, `agent-${counter}.sh`);
  writeFileSync(script, `${text.slice(0, -tail.length)}\nRESTIC_VERSION=${version}\n${snippet}\n}\n`);
  const r = spawnSync("bash", [script], { encoding: "utf8" });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

describe("restic_at_least", () => {
  it.each([
    ["0.14.0", [0, 14], true],
    ["0.14.0", [0, 16], false],
    ["0.16.4-dev", [0, 16], true],
    ["0.16.4-dev", [0, 17], false],
    ["0.17.0", [0, 17], true],
    ["0.17.0", [0, 17, 1], false],
    ["0.17.1", [0, 17, 1], true],
    ["0.18.0", [0, 17, 1], true],
    ["0.18.0", [0, 19], false],
    ["1.0.0", [0, 18], true],
    ["''", [0, 14], false],
  ] as const)("%s >= %j: %s", (version, want, expected) => {
    const r = agent(version, `if restic_at_least ${want.join(" ")}; then echo yes; else echo no; fi`);
    expect(r.stdout.trim()).toBe(expected ? "yes" : "no");
  });
});

describe("restic_failure_code: from the exit status on 0.17 and later, from stderr before", () => {
  const cases: [string, number, string, string][] = [
    // restic 0.18: 10, 11 and 12 say it; its words do not matter.
    ["0.18.0", 10, MISSING, "repo_missing"],
    ["0.18.0", 11, LOCKED, "repo_locked"],
    ["0.18.0", 12, WRONG_PASSWORD, "repo_wrong_password"],
    ["0.18.0", 1, WRONG_PASSWORD, ""],
    ["0.18.0", 3, "", ""],
    // restic 0.14: every failure is 1, and stderr tells them apart.
    ["0.14.0", 1, MISSING, "repo_missing"],
    ["0.14.0", 1, LOCKED, "repo_locked"],
    ["0.14.0", 1, WRONG_PASSWORD, "repo_wrong_password"],
    // 0.14 asks "Is there a repository" after any failure to open the config, also a network one.
    [
      "0.14.0",
      1,
      'Fatal: unable to open config file: Head "http://h/config": dial tcp 127.0.0.1:1: connect: connection refused\nIs there a repository at the following location?\nrest:http://h/',
      "",
    ],
    [
      "0.14.0",
      1,
      "Fatal: unable to open config file: <config/> does not exist\nIs there a repository at the following location?\nrest:http://h/",
      "repo_missing",
    ],
    ["0.14.0", 10, MISSING, ""],
    // restic 0.17.0 has 10 and 11, but its wrong password is still 1.
    ["0.17.0", 10, "", "repo_missing"],
    ["0.17.0", 1, WRONG_PASSWORD, "repo_wrong_password"],
    ["0.17.1", 1, WRONG_PASSWORD, ""],
  ];
  it.each(cases)("restic %s, exit %d: %j", (version, rc, stderr, code) => {
    const r = agent(version, `restic_failure_code ${rc} ${quote(stderr)}; printf '%s\\n' "$REPLY"`);
    expect(r.stdout).toBe(`${code}\n`);
  });

  it("knows exactly the protocol's codes", () => {
    const codes = cases.map(([, , , code]) => code).filter((code) => code !== "");
    expect(new Set(codes)).toEqual(new Set(RESTIC_FAILURE_CODES));
  });

  it("restic_code_field reads the stderr file and gives an event value, null for any other failure", () => {
    const err = join(base, "missing.err");
    writeFileSync(err, MISSING);
    for (const [version, rc, expected] of [
      ["0.14.0", 1, "s:repo_missing"],
      ["0.18.0", 10, "s:repo_missing"],
      ["0.18.0", 1, "z:"],
    ] as const) {
      const r = agent(version, `restic_code_field ${rc} ${quote(err)}; printf '%s\\n' "$REPLY"`);
      expect(r.stdout).toBe(`${expected}\n`);
    }
  });
});

describe("waiting for another restic's lock", () => {
  it("the 0.14 loop waits as long in total as --retry-lock does on 0.16 and later", () => {
    const r = agent(
      "0.14.0",
      'total=0; for ((a = 1; a <= LOCK_RETRY_ATTEMPTS; a++)); do lock_retry_delay "$a"; total=$((total + REPLY)); done; echo "$total $LOCK_WAIT_SECONDS"',
    );
    expect(r.stdout).toBe("280 280\n");
  });

  it.each([
    ["0.18.0", true],
    ["0.16.0", true],
    ["0.15.2", false],
    ["0.14.0", false],
  ] as const)("restic_retry_lock_argv on %s: %s", (version, retries) => {
    const r = agent(
      version,
      [
        'if restic_retry_lock_argv restic_exec repo 0 0 forget --json -- abc; then printf "<%s>" "${RETRY_ARGV[@]}"; echo; else echo "no ${#RETRY_ARGV[@]}"; fi',
        'if restic_retry_lock_argv restic_exec repo 0 0 forget --dry-run --no-lock; then echo "no-lock: yes"; else echo "no-lock: no"; fi',
      ].join("\n"),
    );
    expect(r.stdout).toBe(
      retries
        ? "<restic_exec><repo><0><0><--retry-lock><280s><forget><--json><--><abc>\nno-lock: no\n"
        : "no 0\nno-lock: no\n",
    );
  });

  /**
   * restic_locked_retry against a fake restic that is locked out LOCKED_CALLS times (as the version
   * under test says so), then succeeds. Returns each call's argv and the delays slept.
   */
  function lockedRetry(version: string, lockedCalls: number, lockedStatus: number) {
    counter += 1;
    const dir = mkdtempSync(join(base, "retry-"));
    const log = join(dir, "argv.log");
    const restic = join(dir, "restic");
    const sleep = join(dir, "sleep");
    writeFileSync(
      restic,
      [
        "#!/bin/bash",
        `printf '%s\\n' "$*" >>${quote(log)}`,
        `n=$(wc -l <${quote(log)})`,
        // --retry-lock: restic itself waits, and then gets the lock.
        `if [[ " $* " == *" --retry-lock "* ]]; then exit 0; fi`,
        `if ((n <= ${lockedCalls})); then printf '%s\\n' ${quote(LOCKED)} >&2; exit ${lockedStatus}; fi`,
        "exit 0",
      ].join("\n"),
      { mode: 0o755 },
    );
    writeFileSync(sleep, `#!/bin/bash\nprintf '%s\\n' "$1" >>${quote(join(dir, "slept"))}\n`, {
      mode: 0o755,
    });
    const r = agent(
      version,
      [
        `TOOL[restic]=${quote(restic)} TOOL[sleep]=${quote(sleep)} RUN_DIR=${quote(dir)}`,
        `REPO_URL=(${quote(join(dir, "repo"))}) REPO_PWFILE=(${quote(join(dir, "pw"))})`,
        `restic_locked_retry ${quote(join(dir, "out"))} ${quote(join(dir, "err"))} restic_exec repo 0 0 prune`,
        'echo "status $REPLY"',
      ].join("\n"),
    );
    const read = (name: string) => {
      try {
        return readFileSync(join(dir, name), "utf8").trim().split("\n").filter(Boolean);
      } catch {
        return [];
      }
    };
    return { stdout: r.stdout, calls: read("argv.log"), slept: read("slept").map(Number) };
  }

  it("restic 0.18: one call with --retry-lock 280s, before the command; the agent does not loop", () => {
    const run = lockedRetry("0.18.0", 3, 11);
    expect(run.calls).toEqual(["--retry-lock 280s prune"]);
    expect(run.slept).toEqual([]);
    expect(run.stdout).toBe("status 0\n");
  });

  it("restic 0.14: its own loop, without --retry-lock, again while stderr says the repository is locked", () => {
    const run = lockedRetry("0.14.0", 3, 1);
    expect(run.calls).toEqual(["prune", "prune", "prune", "prune"]);
    expect(run.slept).toEqual([2, 4, 6]);
    expect(run.stdout).toBe("status 0\n");
  });

  it("restic 0.14: gives up after LOCK_RETRY_ATTEMPTS retries, with restic's status", () => {
    const run = lockedRetry("0.14.0", 100, 1);
    expect(run.calls).toHaveLength(31);
    expect(run.slept.reduce((a, b) => a + b, 0)).toBe(280);
    expect(run.stdout).toBe("status 1\n");
  });
});

describe("restic_plain_stderr: restic 0.17 and later write errors as JSON under --json", () => {
  const json = String.raw`{"message_type":"exit_error","code":1,"message":"Fatal: unable to open config file: unexpected HTTP response (403): 403 \u001b[2J \"boom\" \\ \u003cx\u003e é \u2028\nIs there a repository at the following location?\nrest:http://h/"}`;
  const plain =
    'Fatal: unable to open config file: unexpected HTTP response (403): 403 \x1b[2J "boom" \\ <x> é \\u2028\nIs there a repository at the following location?\nrest:http://h/';

  it("restic 0.18: the exit_error line becomes its message, the other lines stay", () => {
    const r = agent(
      "0.18.0",
      `restic_plain_stderr ${quote(`Stat(<config/>) failed: x\n${json}`)}; printf '%s' "$REPLY"`,
    );
    expect(r.stdout).toBe(`Stat(<config/>) failed: x\n${plain}`);
  });

  it("restic 0.14 writes no JSON errors: its text stays as it is", () => {
    const r = agent("0.14.0", `restic_plain_stderr ${quote(json)}; printf '%s' "$REPLY"`);
    expect(r.stdout).toBe(json);
  });

  it("error_line shows the message of a restic 0.18 JSON error", () => {
    const err = join(base, "json.err");
    writeFileSync(err, `${json.replace("rest:http://h/", "rest:http://u:s3cr3t@h/")}\n`);
    const r = agent("0.18.0", `error_line ${quote(err)} rest:http://u:s3cr3t@h/ LABEL; printf '%s' "$REPLY"`);
    expect(r.stdout).toBe(
      'Fatal: unable to open config file: unexpected HTTP response (403): 403 \x1b[2J "boom" \\ <x> é \\u2028',
    );
  });
});

describe("restic check --json (0.18): its errors decoded, its summary's figures read", () => {
  it("restic_plain_stderr decodes check's error lines too, without their trailing newline", () => {
    const line = String.raw`{"message_type":"error","message":"pack 5bb8 contains 2 errors: [blob 98: decrypting blob <tree/98> failed]\n"}`;
    const r = agent("0.18.0", `restic_plain_stderr ${quote(line)}; printf '%s' "$REPLY"`);
    expect(r.stdout).toBe("pack 5bb8 contains 2 errors: [blob 98: decrypting blob <tree/98> failed]");
  });

  it("takes --json from 0.18 only", () => {
    for (const [version, expected] of [
      ["0.14.0", "no"],
      ["0.17.3", "no"],
      ["0.18.0", "yes"],
    ] as const)
      expect(
        agent(version, "if restic_check_json; then echo yes; else echo no; fi").stdout.trim(),
        version,
      ).toBe(expected);
  });

  it("check_summary: the error count and only well-formed pack ids, at most 100; none without a summary", () => {
    const a = "a".repeat(64);
    const b = "0123456789abcdef".repeat(4);
    const summary = (packs: string) =>
      `{"message_type":"summary","num_errors":3,"broken_packs":${packs},"suggest_repair_index":false,"suggest_prune":false}`;
    const run = (text: string | null) => {
      const file = join(base, `check-${++counter}.out`);
      if (text !== null) writeFileSync(file, `${text}\n`);
      return agent("0.18.0", `check_summary ${quote(file)}; printf '%s %s' "$REPLY" "$PACKS_JSON"`).stdout;
    };
    expect(run(summary(`["${a}","../../etc/passwd","${b}","${a.toUpperCase()}"]`))).toBe(
      `n:3 ["${a}","${b}"]`,
    );
    expect(run(summary("null"))).toBe("n:3 []");
    expect(run(summary(JSON.stringify(Array(150).fill(a))))).toBe(
      `n:3 ${JSON.stringify(Array(100).fill(a))}`,
    );
    expect(run('{"message_type":"exit_error","code":1,"message":"Fatal: x"}')).toBe("z: []");
    expect(run(null)).toBe("z: []");
  });
});

describe("restic_delete_refused: a forget that removed nothing, whatever its exit status", () => {
  // restic 0.18.0's stderr when an append-only REST server refuses the delete (it then exits 0).
  const REFUSED =
    "Remove(<snapshot/8afebad5f3>) failed: unexpected HTTP response (403): 403 Forbidden\nunable to remove snapshot/8afebad5f3bff5017b9cb8754a37b3c15b3657fee0434de3a6defe9c6b855155 from the repository";
  it.each([
    ["0.18.0", REFUSED, true],
    ["0.14.0", `${REFUSED}\nFatal: unable to remove snapshots`, true],
    ["0.18.0", "", false],
    ["0.18.0", LOCKED, false],
  ] as const)("%s: %#", (version, stderr, refused) => {
    const file = join(base, `stderr-${++counter}`);
    writeFileSync(file, stderr);
    const r = agent(version, `if restic_delete_refused ${quote(file)}; then echo yes; else echo no; fi`);
    expect(r.stdout.trim()).toBe(refused ? "yes" : "no");
  });
});
