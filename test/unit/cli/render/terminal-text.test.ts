// A hostile host's bytes never reach the operator's terminal raw: every renderer passes a host's text
// through one sanitiser, which shows C0/C1 controls and DEL visibly. With colour off no ESC appears at
// all; with colour on, only the renderers' own SGR colour sequences do.
import { describe, expect, it } from "vitest";
import { renderReportMarkdown } from "../../../../src/cli/render/markdown.js";
import { renderProgress } from "../../../../src/cli/render/progress.js";
import { renderReportTable } from "../../../../src/cli/render/report-table.js";
import { makeStyle } from "../../../../src/cli/render/style.js";
import { terminalSafe, terminalText } from "../../../../src/cli/render/terminal-text.js";
import type { HostResult, Report } from "../../../../src/report/report-schema.js";
import { hostResult, report } from "../../../helpers/report-fixture.js";

/** What a compromised host or a hostile repository backend might send: every kind of control. */
const EVIL = [
  "\u001b[2J\u001b[H", // clear the screen, cursor home
  "\u001b]52;c;cm0gLXJmIC8K\u0007", // OSC 52: write the clipboard
  "\u001b]0;pwned\u001b\\", // set the window title, ST-terminated
  "\u009b31m", // C1 CSI
  "\u009d0;t\u009c", // C1 OSC ... ST
  "\u007f", // DEL
  "\rfake ok line", // CR: overwrite what the line showed
  "\u0008\u0000\u0007", // BS, NUL, BEL
].join("");

/** Any control byte but newline: what must never reach a terminal from a host. */
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;
/** The renderers' own colour sequences: SGR, `ESC [ digits m`. */
// eslint-disable-next-line no-control-regex
const OWN_SGR = /\u001b\[[0-9;]*m/g;

function expectTerminalSafe(text: string, color: boolean): void {
  if (!color) expect(text).not.toContain("\u001b");
  expect(text.replace(OWN_SGR, "")).not.toMatch(RAW_CONTROL);
  // The hostile text is there, visibly: the operator sees what the host sent.
  expect(text).toContain("\\x1b]52;c;cm0gLXJmIC8K\\x07");
  expect(text).toContain("\\x9b31m");
  expect(text).toContain("\\x7f");
  expect(text).toContain("\\rfake ok line");
}

const evilHost = (name: string, extra: Partial<HostResult>): HostResult =>
  hostResult(name, "failed", {
    error: { code: "preflight", message: `restic said: ${EVIL}`, hint: `hint ${EVIL}` },
    facts: {
      hostname: `host${EVIL}`,
      kernel: `6.1${EVIL}`,
      os: `Debian${EVIL}`,
      bash: "5.2",
      restic: `0.16${EVIL}`,
      lvm: null,
      user: `root${EVIL}`,
    },
    checks: [
      { name: "bash", ok: true, detail: `5.2 ${EVIL}`, hint: "", code: null },
      {
        name: "repo:/srv/a",
        ok: false,
        detail: `Fatal: ${EVIL}\nsecond line`,
        hint: `init it ${EVIL}`,
        code: null,
      },
    ],
    warnings: [{ code: "restic_partial", message: `warning ${EVIL}` }],
    ...extra,
  });

const job = {
  name: "data",
  category: "standard_path",
  status: "failed" as const,
  snapshot: null,
  copies: [
    {
      from: "/srv/a",
      to: "/srv/b",
      status: "failed" as const,
      duration_ms: null,
      error: `copy ${EVIL}`,
      error_code: null,
    },
  ],
  repos: [
    {
      repo: "/srv/a",
      status: "failed" as const,
      snapshot_id: `1a2b${EVIL}`,
      files_new: null,
      files_changed: null,
      files_unmodified: null,
      data_added: null,
      data_added_packed: null,
      duration_ms: null,
      error: `backup ${EVIL}`,
      error_code: null,
    },
  ],
  prunes: [
    {
      repo: "/srv/a",
      status: "failed" as const,
      kept: 1,
      removed: 1,
      removed_ids: [`dead${EVIL}`],
      dry_run: false,
      error: `prune ${EVIL}`,
      error_code: null,
    },
  ],
  latest: [
    {
      repo: "/srv/a",
      snapshot_id: `1a2b${EVIL}`,
      time: `2026-01-01T00:00:00Z${EVIL}`,
      age_s: null,
      stale: true,
      error: `status ${EVIL}`,
      error_code: null,
    },
  ],
};

describe("terminalText", () => {
  it("shows C0 controls, DEL and C1 controls visibly and keeps tab and printable text", () => {
    expect(terminalText("a\u001b[31mred")).toBe("a\\x1b[31mred");
    expect(terminalText("\u001b]52;c;aGk=\u0007")).toBe("\\x1b]52;c;aGk=\\x07");
    expect(terminalText("\u009b2J\u009d\u0080\u009f")).toBe("\\x9b2J\\x9d\\x80\\x9f");
    expect(terminalText("x\u007fy\u0000z\u0008")).toBe("x\\x7fy\\x00z\\x08");
    expect(terminalText("over\rwrite")).toBe("over\\rwrite");
    expect(terminalText("tab\tkept, é, ✓, 日本")).toBe("tab\tkept, é, ✓, 日本");
    expect(terminalText("one\ntwo")).toBe("one\\ntwo");
  });

  it("keeps newlines only when asked (a renderer that splits lines itself), never CR", () => {
    expect(terminalText("one\ntwo\r\u001b", { keepNewlines: true })).toBe("one\ntwo\\r\\x1b");
  });

  it("is idempotent, so a renderer may apply it twice", () => {
    const once = terminalText(EVIL);
    expect(terminalText(once)).toBe(once);
    expect(once).not.toMatch(RAW_CONTROL);
  });

  it("terminalSafe maps every string of a structure, leaving other values and the input alone", () => {
    const input = { a: [`x${EVIL}`, 1, null, true], b: { c: "\u001b" } };
    const copy = JSON.parse(JSON.stringify(input)) as typeof input;
    expect(terminalSafe(input)).toEqual({ a: [terminalText(`x${EVIL}`), 1, null, true], b: { c: "\\x1b" } });
    expect(input).toEqual(copy);
  });
});

describe("renderers with a hostile host's text", () => {
  const hosts = () => [
    evilHost("web1", {}),
    evilHost("web2", { status: "partial", error: null, jobs: [job] }),
    evilHost("web3", { status: "unreachable", facts: null, checks: [] }),
  ];

  for (const command of ["ping", "check", "backup", "status", "prune"]) {
    for (const color of [false, true]) {
      it(`${command} table, colour ${color ? "on" : "off"}: no raw control byte`, () => {
        const text = renderReportTable(report(command, hosts()), makeStyle(color));
        expectTerminalSafe(text, color);
        if (color) expect(text).toContain("\u001b[31m"); // its own colour is still there
      });
    }
  }

  for (const command of ["check", "backup", "status", "prune"]) {
    it(`${command} markdown: no raw control byte, newlines still as spaces`, () => {
      const text = renderReportMarkdown(report(command, hosts()));
      expectTerminalSafe(text, false);
    });
  }

  it("the JSON report keeps the exact text: sanitising happens only where text reaches a terminal", () => {
    const r = report("check", hosts());
    renderReportTable(r, makeStyle(false));
    expect(r.hosts[0]?.facts?.hostname).toBe(`host${EVIL}`);
    expect((JSON.parse(JSON.stringify(r)) as Report).hosts[0]?.checks[1]?.detail).toBe(
      `Fatal: ${EVIL}\nsecond line`,
    );
  });

  for (const color of [false, true]) {
    for (const tty of [false, true]) {
      it(`progress (--verbose log lines too), colour ${color ? "on" : "off"}, tty ${tty}`, () => {
        const style = makeStyle(color);
        const options = { tty, now: new Date(0), style };
        const text = [
          renderProgress({ host: "web1", step: "log", detail: `rlvm-agent: ${EVIL}` }, options),
          renderProgress({ host: "web1", step: "running", detail: `backup ${EVIL}` }, options),
          renderProgress({ host: "web1", step: "done", status: "failed", detail: `failed ${EVIL}` }, options),
          renderProgress({ host: `web1${EVIL}`, step: "connecting" }, options),
        ].join("");
        expectTerminalSafe(text, color);
        // One line per event: a host cannot split or join progress lines.
        expect(text.split("\n")).toHaveLength(5);
      });
    }
  }
});
