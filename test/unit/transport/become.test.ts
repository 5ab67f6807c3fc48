import { describe, expect, it } from "vitest";
import { Become } from "../../../src/transport/become.js";

const ARGV = ["bash", "-c", "echo $1", "x", "it's"];

describe("Become: the command", () => {
  it("runs argv as it is with become = none", () => {
    expect(new Become({ method: "none" }).command(ARGV)).toBe(`bash -c 'echo $1' x 'it'\\''s'`);
  });

  it("uses sudo -n without a password, so sudo fails at once instead of asking", () => {
    const become = new Become({ method: "sudo", password: null });
    expect(become.command(ARGV)).toBe(`sudo -n -- bash -c 'echo $1' x 'it'\\''s'`);
    expect(become.readsPassword).toBe(false);
  });

  it("uses sudo -S -k with its own prompt with a password, which never appears in the command", () => {
    const become = new Become({ method: "sudo", password: "pw-secret" });
    const command = become.command(ARGV);
    expect(command).toBe(`sudo -S -k -p '${become.prompt}' -- bash -c 'echo $1' x 'it'\\''s'`);
    expect(command).not.toContain("pw-secret");
    expect(become.readsPassword).toBe(true);
  });

  it("makes a new, unguessable prompt for every command", () => {
    const a = new Become({ method: "sudo", password: "pw" }).prompt;
    const b = new Become({ method: "sudo", password: "pw" }).prompt;
    expect(a).toMatch(/^\[rlvm-fleet sudo password [0-9a-f]{16}\]$/);
    expect(a).not.toBe(b);
  });
});

describe("Become: the password exchange", () => {
  it("answers nothing until sudo prompts, then the password once, and strips the prompt", () => {
    const become = new Become({ method: "sudo", password: "pw" });
    expect(become.readStderr("some banner\n")).toEqual({ text: "some banner\n", reply: null, refused: null });
    expect(become.readStderr(`${become.prompt}`)).toEqual({ text: "", reply: "pw\n", refused: null });
    expect(become.readStderr("agent output\n")).toEqual({
      text: "agent output\n",
      reply: null,
      refused: null,
    });
  });

  it("finds a prompt split over two chunks", () => {
    const become = new Become({ method: "sudo", password: "pw" });
    const half = become.prompt.length / 2;
    expect(become.readStderr(become.prompt.slice(0, half)).reply).toBeNull();
    expect(become.readStderr(become.prompt.slice(half)).reply).toBe("pw\n");
  });

  it("a second prompt means a wrong password: refused, and the password is not sent again", () => {
    const become = new Become({ method: "sudo", password: "pw" });
    expect(become.readStderr(become.prompt).reply).toBe("pw\n");
    const again = become.readStderr(`Sorry, try again.\n${become.prompt}`);
    expect(again.reply).toBeNull();
    expect(again.text).toBe("Sorry, try again.\n");
    expect(again.refused).toMatchObject({ code: "sudo_password_wrong" });
    expect(become.readStderr(become.prompt).reply).toBeNull();
  });

  it("after sudoDone, the prompt's text is only text: no password, no refusal, no diagnosis", () => {
    const become = new Become({ method: "sudo", password: "pw" });
    expect(become.readStderr(become.prompt).reply).toBe("pw\n");
    become.sudoDone();
    expect(become.readStderr(`backend: ${become.prompt}\n`)).toEqual({
      text: `backend: ${become.prompt}\n`,
      reply: null,
      refused: null,
    });
    expect(become.diagnose(1, "Sorry, try again.\nsudo: 1 incorrect password attempt\n")).toBeNull();
  });

  it("a prompt with no password to give is refused", () => {
    const become = new Become({ method: "sudo", password: null });
    expect(become.readStderr(become.prompt)).toMatchObject({
      reply: null,
      refused: { code: "sudo_password_wrong" },
    });
  });
});

describe("Become: diagnosing sudo's answers", () => {
  it("a password is required (sudo -n)", () => {
    const error = new Become({ method: "sudo", password: null }).diagnose(
      1,
      "sudo: a password is required\n",
    );
    expect(error).toMatchObject({ code: "sudo_password_required", status: "failed" });
    expect(error?.hint).toMatch(/become_password_file/);
  });

  it("a wrong password, from sudo's words or from its exit after the password was sent", () => {
    const become = new Become({ method: "sudo", password: "pw" });
    expect(become.diagnose(1, "Sorry, try again.\n")).toMatchObject({ code: "sudo_password_wrong" });
    expect(become.diagnose(1, "sudo: 1 incorrect password attempt\n")).toMatchObject({
      code: "sudo_password_wrong",
    });
    // Before the password went out, a sudo error with exit 1 is not about the password.
    expect(become.diagnose(1, "sudo: something else\n")).toBeNull();
    become.readStderr(become.prompt);
    expect(become.diagnose(1, "sudo: something else\n")).toMatchObject({ code: "sudo_password_wrong" });
  });

  it("a login user sudo refuses, with sudo's last lines", () => {
    const error = new Become({ method: "sudo", password: null }).diagnose(
      1,
      "first\nrlvm is not in the sudoers file.\n",
    );
    expect(error).toMatchObject({
      code: "sudo_failed",
      message: "sudo refused: first | rlvm is not in the sudoers file.",
      hint: expect.stringContaining("a sudo rule to run bash as root") as string,
    });
    // The installed agent's rule is another one: the hint the caller gives says which.
    const installed = new Become({ method: "sudo", password: null, refusedHint: "run install-agent" });
    expect(installed.diagnose(1, "Sorry, user rlvm is not allowed to execute ...\n")).toMatchObject({
      code: "sudo_failed",
      hint: "run install-agent",
    });
  });

  it("says nothing when sudo is not to blame, or not in use", () => {
    expect(new Become({ method: "sudo", password: null }).diagnose(98, "sha256 mismatch\n")).toBeNull();
    expect(new Become({ method: "none" }).diagnose(1, "sudo: a password is required\n")).toBeNull();
  });
});
