import { describe, expect, it } from "vitest";
import { Become, SUDO_PROMPT } from "../../../src/transport/become.js";

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
    expect(command).toBe(`sudo -S -k -p '${SUDO_PROMPT}' -- bash -c 'echo $1' x 'it'\\''s'`);
    expect(command).not.toContain("pw-secret");
    expect(become.readsPassword).toBe(true);
  });
});

describe("Become: the password exchange", () => {
  it("answers nothing until sudo prompts, then the password once, and strips the prompt", () => {
    const become = new Become({ method: "sudo", password: "pw" });
    expect(become.readStderr("some banner\n")).toEqual({ text: "some banner\n", reply: null, refused: null });
    expect(become.readStderr(`${SUDO_PROMPT}`)).toEqual({ text: "", reply: "pw\n", refused: null });
    expect(become.readStderr("agent output\n")).toEqual({
      text: "agent output\n",
      reply: null,
      refused: null,
    });
  });

  it("finds a prompt split over two chunks", () => {
    const become = new Become({ method: "sudo", password: "pw" });
    const half = SUDO_PROMPT.length / 2;
    expect(become.readStderr(SUDO_PROMPT.slice(0, half)).reply).toBeNull();
    expect(become.readStderr(SUDO_PROMPT.slice(half)).reply).toBe("pw\n");
  });

  it("a second prompt means a wrong password: refused, and the password is not sent again", () => {
    const become = new Become({ method: "sudo", password: "pw" });
    expect(become.readStderr(SUDO_PROMPT).reply).toBe("pw\n");
    const again = become.readStderr(`Sorry, try again.\n${SUDO_PROMPT}`);
    expect(again.reply).toBeNull();
    expect(again.text).toBe("Sorry, try again.\n");
    expect(again.refused).toMatchObject({ code: "sudo_password_wrong" });
    expect(become.readStderr(SUDO_PROMPT).reply).toBeNull();
  });

  it("a prompt with no password to give is refused", () => {
    const become = new Become({ method: "sudo", password: null });
    expect(become.readStderr(SUDO_PROMPT)).toMatchObject({
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
    become.readStderr(SUDO_PROMPT);
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
    });
  });

  it("says nothing when sudo is not to blame, or not in use", () => {
    expect(new Become({ method: "sudo", password: null }).diagnose(98, "sha256 mismatch\n")).toBeNull();
    expect(new Become({ method: "none" }).diagnose(1, "sudo: a password is required\n")).toBeNull();
  });
});
