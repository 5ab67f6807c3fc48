// Becoming root, as Ansible's become plugins do: the sudo command line, the answer to sudo's password
// prompt, and what sudo's refusals mean. The caller only feeds it stderr and asks it why a command died.
import { randomBytes } from "node:crypto";
import { HostError } from "../errors.js";
import { shellCommand } from "./remote-command.js";

/**
 * What sudo prints when it wants the password; only then does the controller send it. New for every
 * command (random bytes): nothing on the host can know it in advance and print it to get the password.
 */
function newSudoPrompt(): string {
  return `[rlvm-fleet sudo password ${randomBytes(8).toString("hex")}]`;
}

/**
 * How to become root. `refusedHint`: what to do when sudo refuses the command, when that is not
 * "give the login user a rule for bash" (the installed agent has a rule of its own).
 */
export type BecomeMethod =
  { method: "sudo"; password: string | null; refusedHint?: string } | { method: "none" };

export interface StderrReading {
  /** The chunk without sudo's prompt: what sudo and the command printed. */
  text: string;
  /** Write this to the command's stdin now (the password line). */
  reply: string | null;
  /** sudo asked again (or asked with no password to give): stop the command. */
  refused: HostError | null;
}

export class Become {
  private passwordSent = false;
  private promptScan = "";
  /** Whether sudo has finished (the command runs): from then on stderr is the command's own. */
  private done = false;
  /** This command's sudo prompt (`-p`); see newSudoPrompt. */
  readonly prompt = newSudoPrompt();

  constructor(private readonly method: BecomeMethod) {}

  /**
   * Run `argv` as root: `sudo -n` when no password is configured (fails at once if sudo would ask),
   * `sudo -S -k` with a recognisable prompt when one is, so the password is written to stdin only
   * when sudo actually asks for it and never becomes part of the command's input.
   */
  command(argv: readonly string[]): string {
    if (this.method.method === "none") return shellCommand(argv);
    const sudo =
      this.method.password === null ? ["sudo", "-n", "--"] : ["sudo", "-S", "-k", "-p", this.prompt, "--"];
    return shellCommand([...sudo, ...argv]);
  }

  /** Whether sudo may read a password from stdin first, so the command's input must wait for it. */
  get readsPassword(): boolean {
    return this.method.method === "sudo" && this.method.password !== null;
  }

  /**
   * sudo is done: the command runs (the caller saw its first output of its own). Its stderr is no
   * longer scanned for the prompt, and sudo is never blamed for how it ends.
   */
  sudoDone(): void {
    this.done = true;
    this.promptScan = "";
  }

  /** One chunk of the command's stderr: answers the first prompt, refuses a second one. */
  readStderr(chunk: string): StderrReading {
    if (this.done) return { text: chunk, reply: null, refused: null };
    const prompt = this.prompt;
    // A prompt may arrive split over two chunks: scan the end of what came before too.
    this.promptScan = (this.promptScan + chunk).slice(-2 * prompt.length);
    const text = chunk.replaceAll(prompt, "");
    if (!this.promptScan.includes(prompt)) return { text, reply: null, refused: null };
    this.promptScan = "";
    const password = this.method.method === "sudo" ? this.method.password : null;
    if (this.passwordSent || password === null) {
      // Asked again: the password was wrong. Never send it twice.
      return {
        text,
        reply: null,
        refused: new HostError(
          "sudo_password_wrong",
          "sudo rejected the password from become_password_file",
          "check become_password_file, and that the login user may use sudo",
        ),
      };
    }
    this.passwordSent = true;
    return { text, reply: `${password}\n`, refused: null };
  }

  /** Why a command ended without doing its work, when sudo is to blame; null when it is not. */
  diagnose(exitCode: number | null, stderr: string): HostError | null {
    if (this.method.method === "none" || this.done) return null;
    if (/a password is required/.test(stderr)) {
      return new HostError(
        "sudo_password_required",
        "sudo asks the login user for a password",
        "set become_password_file in the inventory, or give the login user a NOPASSWD sudo rule for running the agent",
      );
    }
    if (
      /incorrect password|Sorry, try again/.test(stderr) ||
      (this.passwordSent && exitCode === 1 && /sudo:/.test(stderr))
    ) {
      return new HostError(
        "sudo_password_wrong",
        "sudo rejected the password from become_password_file",
        "check become_password_file",
      );
    }
    if (/is not in the sudoers|not allowed to execute|may not run sudo/.test(stderr)) {
      return new HostError(
        "sudo_failed",
        `sudo refused: ${lastLines(stderr)}`,
        this.method.refusedHint ??
          'give the login user a sudo rule to run bash as root, or set become = "none" and log in as root',
      );
    }
    return null;
  }
}

/** The last lines of sudo's stderr, on one line, for a message. */
function lastLines(stderr: string): string {
  return stderr.trim().split("\n").slice(-5).join(" | ");
}
