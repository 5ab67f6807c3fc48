// Issue 13's end-to-end case: a real host whose repository error text carries terminal escape sequences
// and whose repository URL holds a password with `@` in it. Real restic on the host talks to a REST
// "server" here that answers every request with escape sequences in its status line, which restic
// puts into its error; the real CLI must print that error visibly and without any piece of the password.
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { runCli, runJson } from "../helpers/run-cli.js";
import { describeIntegration } from "./harness/describe-integration.js";
import { startFleet, type Fleet } from "./harness/fleet.js";
import { leftoverRunDirs, makeDir, writeInventory, writePasswordFile } from "./helpers/test-fleet.js";

const HOST = "hout1";
// Long and distinctive, so that any 4 characters of it in the output are a leak, not a coincidence:
// `@` (the user-info ends at the last one), `:` after the user's, `!~` and a percent-encoded `/`.
const URL_PASSWORD = "Hx7@p@ss:w0rd-S3cr3t!~Zq9%2Fvy";
const DECODED_PASSWORD = decodeURIComponent(URL_PASSWORD);
// OSC 52 (write the clipboard), clear the screen, OSC 0 (set the title): what a hostile backend sends.
const HOSTILE_REASON = "\x1b]52;c;cHduZWQ=\x07\x1b[2J\x1b]0;pwned\x07 boom";
// What the table shows of it: every control character in its visible form.
const VISIBLE_REASON = "\\x1b]52;c;cHduZWQ=\\x07\\x1b[2J\\x1b]0;pwned\\x07 boom";
// C0 controls but newline and tab, DEL and C1 controls: none may reach a terminal.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

/** Every piece of at least 4 characters of the password, as written in the URL and as restic decodes it. */
function passwordPieces(): string[] {
  const pieces = new Set<string>();
  for (const secret of [URL_PASSWORD, DECODED_PASSWORD]) {
    for (let start = 0; start < secret.length; start++) {
      for (let end = start + 4; end <= secret.length; end++) pieces.add(secret.slice(start, end));
    }
  }
  return [...pieces];
}

/** Output that may reach a terminal: no ESC byte, no other control but newline and tab, no password. */
function expectSafe(what: string, text: string): void {
  // Quoted in the messages, so that a failure does not send the escapes to the tester's terminal.
  const quoted = JSON.stringify(text);
  expect(text.includes("\x1b"), `${what} holds an ESC byte: ${quoted}`).toBe(false);
  expect(CONTROL.exec(text)?.[0], `${what} holds a control character: ${quoted}`).toBeUndefined();
  expect(
    passwordPieces().filter((piece) => text.includes(piece)),
    `${what} holds a piece of the password: ${quoted}`,
  ).toEqual([]);
  for (const piece of ["S3cr3t", "p@ss", "w0rd", "Zq9"]) {
    expect(text.includes(piece), `${what} holds ${piece}: ${quoted}`).toBe(false);
  }
}

/** `text` contains `part`; on failure both are quoted, for the same reason as in expectSafe. */
function expectShown(text: string, part: string): void {
  expect(text.includes(part), `${JSON.stringify(part)} not in ${JSON.stringify(text)}`).toBe(true);
}

describeIntegration("a repository's hostile error text through the real CLI", () => {
  let fleet: Fleet;
  let dir: string;
  let server: Server;
  const sockets = new Set<Socket>();
  let requests = 0;
  let inventory: string;
  let repo: string;

  beforeAll(async () => {
    // Not an HTTP server: a raw TCP one, so the status line is exactly the bytes written here. A 403,
    // which every restic gives up on at once: restic 0.17 and later retry a 500 for 15 minutes.
    server = createServer((socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {});
      let head = "";
      socket.on("data", (chunk) => {
        head += chunk.toString("latin1");
        // Every request restic sends here has no body: the end of its head is the end of the request.
        while (head.includes("\r\n\r\n")) {
          head = head.slice(head.indexOf("\r\n\r\n") + 4);
          requests++;
          socket.end(
            `HTTP/1.1 403 ${HOSTILE_REASON}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
            "latin1",
          );
        }
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("the REST server has no port");
    repo = `rest:http://fleet:${URL_PASSWORD}@127.0.0.1:${address.port}/repo`;

    fleet = await startFleet({ hosts: [HOST] });
    dir = mkdtempSync(join(fleet.dir, "hostile-"));
    chmodSync(dir, 0o755);
    const password = writePasswordFile(join(dir, "restic-password"), "correct horse battery staple");
    makeDir(join(dir, "data"));
    const config = join(dir, "host.toml");
    writeFileSync(
      config,
      `[standard_path.data]
backup_source_path = ${JSON.stringify(join(dir, "data"))}
exclude_paths = []

[[standard_path.data.repositories]]
repo_path = ${JSON.stringify(repo)}
password_file = ${JSON.stringify(password)}
prune_keep_last = 3
`,
    );
    inventory = writeInventory(fleet, join(dir, "inventory.toml"), { hosts: [HOST], defaults: { config } });
  }, 120_000);

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
    await fleet?.stop();
  });

  afterEach(() => {
    expect(leftoverRunDirs(fleet)).toEqual([]);
  });

  it("validate accepts the repository URL, and plan prints it masked", async () => {
    const valid = await runCli(["validate", "--inventory", inventory, "--no-color"]);
    expect(valid.code, JSON.stringify(valid.stdout + valid.stderr)).toBe(0);
    expectSafe("validate", valid.stdout + valid.stderr);
    const plan = await runCli(["plan", "--inventory", inventory, "--no-color"]);
    expect(plan.code, JSON.stringify(plan.stdout + plan.stderr)).toBe(0);
    expectShown(plan.stdout, "rest:http://fleet:***@127.0.0.1:");
    expectSafe("plan", plan.stdout + plan.stderr);
  });

  it("check --no-color shows restic's error with every escape visible and no piece of the password", async () => {
    const before = requests;
    const run = await runCli(["check", "--inventory", inventory, "--no-color"]);
    expect(run.code, JSON.stringify(run.stdout + run.stderr)).toBe(1);
    // The hostile text reached the controller from the host: restic's error, in its visible form.
    expect(requests).toBeGreaterThan(before);
    expectShown(run.stdout, VISIBLE_REASON);
    expectShown(run.stdout, "rest:http://fleet:***@127.0.0.1:");
    expectSafe("check stdout", run.stdout);
    expectSafe("check stderr", run.stderr);
  });

  it("check --verbose covers the agent's log lines too", async () => {
    const run = await runCli(["check", "--inventory", inventory, "--no-color", "--verbose"]);
    expect(run.code, JSON.stringify(run.stdout + run.stderr)).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`\\[${HOST}\\] rlvm-agent: `));
    expectShown(run.stdout, VISIBLE_REASON);
    expectSafe("check --verbose stdout", run.stdout);
    expectSafe("check --verbose stderr", run.stderr);
  });

  it("the JSON report keeps the escape text as data, JSON-escaped, and masks the password", async () => {
    const reportFile = join(dir, "check-report.json");
    const run = await runJson("check", inventory, "--report", reportFile);
    expect(run.code, JSON.stringify(run.stdout + run.stderr)).toBe(1);
    for (const [what, raw] of [
      ["--format json stdout", run.stdout],
      ["--report file", readFileSync(reportFile, "utf8")],
    ] as const) {
      // ESC only as the escape \u001b inside a JSON string, never as a byte.
      expect(raw.includes("\x1b"), what).toBe(false);
      expect(raw, what).toContain("\\u001b]52;c;cHduZWQ=\\u0007");
      expect(
        passwordPieces().filter((piece) => raw.includes(piece)),
        what,
      ).toEqual([]);
    }
    const host = run.host(HOST);
    expect(host?.status).toBe("failed");
    const repoCheck = host?.checks.find((c) => c.name.startsWith("repo:"));
    expect(repoCheck?.ok).toBe(false);
    expect(repoCheck?.name).toContain("rest:http://fleet:***@127.0.0.1:");
    expectShown(repoCheck?.detail ?? "", HOSTILE_REASON);
    expectSafe("stderr", run.stderr);
  });

  it("backup --no-color fails on the repository the same way, sanitised and masked", async () => {
    for (const extra of [[], ["--verbose"]]) {
      const what = ["backup", ...extra].join(" ");
      const run = await runCli(["backup", "--inventory", inventory, "--no-color", ...extra]);
      expect(run.code, JSON.stringify(run.stdout + run.stderr)).toBe(1);
      expectShown(run.stdout, VISIBLE_REASON);
      // The progress line of the failed repository carries restic's error too.
      expectShown(run.stderr, VISIBLE_REASON);
      expectSafe(`${what} stdout`, run.stdout);
      expectSafe(`${what} stderr`, run.stderr);
    }
  });
});
