import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { AGENT_ERROR_CODES, encodeValue, planLine, PROTOCOL_VERSION } from "../../../src/agent/protocol.js";
import { parseEvents } from "../../../src/agent/parse-events.js";
import { shellCommand } from "../../../src/transport/remote-command.js";

const HOSTILE = [
  "/data/a b",
  "/data/$(touch /tmp/pwned)",
  "/data/`id`",
  "/data/;rm -rf /",
  "/data/'quoted' \"double\"",
  "-n",
  "--help",
  "/data/tab\there",
  "/data/back\\slash\\x41",
  "/data/ünïcödé/日本",
  "%b%s%n",
  "",
  "*",
  "~root",
];

describe("plan value encoding", () => {
  it("leaves nothing a shell or a word splitter could act on", () => {
    for (const value of HOSTILE) {
      expect(encodeValue(value)).toMatch(/^(?:[A-Za-z0-9/._,:@+=]|\\x[0-9a-f]{2})+$|^-$/);
    }
  });

  it("decodes back to the exact bytes in real bash with printf %b", () => {
    const script =
      'while IFS=" " read -r -a f; do printf -v v "%b" "${f[1]}"; [ "${f[1]}" = - ] && v=; printf "%s\\0" "$v"; done';
    const input = HOSTILE.map((value) => planLine("value", value)).join("\n") + "\n";
    const result = spawnSync("bash", ["-c", script], { input, encoding: "utf8" });
    expect(result.status).toBe(0);
    expect(result.stdout.split("\0").slice(0, -1)).toEqual(HOSTILE);
  });
});

describe("shell quoting of the remote command", () => {
  it("passes every argument through a POSIX shell unchanged", () => {
    const result = spawnSync(
      "sh",
      ["-c", `printf '%s\\0' ${shellCommand(HOSTILE.filter((v) => v !== ""))}`],
      { encoding: "utf8" },
    );
    expect(result.stdout.split("\0").slice(0, -1)).toEqual(HOSTILE.filter((v) => v !== ""));
  });
});

describe("parseEvents", () => {
  it("parses complete lines as they arrive, tolerating noise and split chunks", () => {
    const events: string[] = [];
    const noise: string[] = [];
    const invalid: string[] = [];
    const parser = parseEvents(
      (e) => events.push(e.event),
      (line, reason) => noise.push(`${reason}: ${line}`),
      (event) => invalid.push(event),
    );
    parser.push(`{"v":${PROTOCOL_VERSION},"event":"warn`);
    parser.push(
      `ing","code":"c","message":"m"}\nhello\n{"v":${PROTOCOL_VERSION + 1},"event":"warning"}\n{bad json\n`,
    );
    parser.push(`{"v":${PROTOCOL_VERSION},"event":"result","code":null,"message":"done"}`);
    expect(events).toEqual(["warning"]);
    parser.end();
    expect(events).toEqual(["warning", "result"]);
    expect(noise).toHaveLength(3);
    expect(invalid).toEqual([]);
  });

  it("reports an event of our protocol that breaks it (an unknown code) as invalid, not as noise", () => {
    const invalid: string[] = [];
    const noise: string[] = [];
    const parser = parseEvents(
      () => undefined,
      (line) => noise.push(line),
      (event, reason) => invalid.push(`${event}: ${reason}`),
    );
    parser.push(`{"v":${PROTOCOL_VERSION},"event":"result","code":"made_up","message":"m"}\n`);
    expect(invalid).toEqual([expect.stringMatching(/^result: code: /)]);
    expect(noise).toEqual([]);
  });

  it("a code named like an Object.prototype key (__proto__, constructor) is invalid, not a known code", () => {
    const invalid: string[] = [];
    const events: string[] = [];
    const parser = parseEvents(
      (e) => events.push(e.event),
      () => undefined,
      (event, reason) => invalid.push(`${event}: ${reason}`),
    );
    for (const code of ["__proto__", "constructor", "toString"])
      parser.push(`{"v":${PROTOCOL_VERSION},"event":"result","code":"${code}","message":"m"}\n`);
    expect(invalid).toEqual(Array(3).fill(expect.stringMatching(/^result: code: /)));
    expect(events).toEqual([]);
  });

  it("drops an overlong line up to its newline: its remainder is never parsed as an event", () => {
    const events: string[] = [];
    const noise: string[] = [];
    const parser = parseEvents(
      (e) => events.push(e.event),
      (_line, reason) => noise.push(reason),
      () => undefined,
    );
    const forged = `{"v":${PROTOCOL_VERSION},"event":"result","code":null,"message":"forged"}`;
    parser.push("x".repeat(8 * 1024 * 1024 + 1));
    // The rest of the same line, in pieces: one without a newline, then one that ends the line.
    parser.push(forged);
    parser.push(`${forged}\n`);
    parser.push(`{"v":${PROTOCOL_VERSION},"event":"warning","code":"c","message":"next line"}\n`);
    parser.push(forged);
    parser.end();
    expect(noise).toEqual(["line too long"]);
    expect(events).toEqual(["warning", "result"]);
  });

  it("an overlong line that never ends hides nothing at the end either", () => {
    const events: string[] = [];
    const parser = parseEvents(
      (e) => events.push(e.event),
      () => undefined,
      () => undefined,
    );
    parser.push("x".repeat(8 * 1024 * 1024 + 1));
    parser.push(`{"v":${PROTOCOL_VERSION},"event":"result","code":null,"message":"forged"}`);
    parser.end();
    expect(events).toEqual([]);
  });
});

describe("the agent's failure codes", () => {
  it("are exactly the contract's AGENT_ERROR_CODES, each with a hint", () => {
    const dir = fileURLToPath(new URL("../../../agents/src/", import.meta.url));
    const source = readdirSync(dir)
      .filter((name) => name.endsWith(".sh"))
      .map((name) => readFileSync(join(dir, name), "utf8"))
      .join("\n");
    const used = new Set(
      [...source.matchAll(/\bfail ([a-z_]+) |emit result code s:([a-z_]+) /g)].map((m) => m[1] ?? m[2]),
    );
    expect([...used].sort()).toEqual(Object.keys(AGENT_ERROR_CODES).sort());
    for (const { hint } of Object.values(AGENT_ERROR_CODES)) expect(hint).not.toBe("");
  });
});
