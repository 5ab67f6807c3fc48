// The one command line a host's login shell sees, built from argv parts with one quoting function,
// and the one place that adds sudo.

/** Quote one argument for a POSIX shell: single quotes, with `'` written as `'\''`. */
export function shellQuote(arg: string): string {
  if (/^[A-Za-z0-9_./=:@%+,-]+$/.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

export function shellCommand(argv: readonly string[]): string {
  return argv.map(shellQuote).join(" ");
}

/** What sudo prints when it wants the password; only then does the controller send it. */
export const SUDO_PROMPT = "[rlvm-fleet sudo password]";

export type Become = { method: "sudo"; withPassword: boolean } | { method: "none" };

/**
 * Run `argv` as root: `sudo -n` when no password is configured (fails at once if sudo would ask),
 * `sudo -S -k` with a recognisable prompt when one is, so the password is written to stdin only when
 * sudo actually asks for it and never becomes part of the command's input.
 */
export function becomeCommand(become: Become, argv: readonly string[]): string {
  if (become.method === "none") return shellCommand(argv);
  const sudo = become.withPassword ? ["sudo", "-S", "-k", "-p", SUDO_PROMPT, "--"] : ["sudo", "-n", "--"];
  return shellCommand([...sudo, ...argv]);
}
