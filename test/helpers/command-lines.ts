// Command lines in the README and the examples: every `rlvm-fleet` invocation must name a real
// command and only options that command has.
import { runCli } from "./run-cli.js";

const helpCache = new Map<string, string>();
const GROUPS = new Set(["report"]);

async function helpOf(command: string): Promise<string> {
  let help = helpCache.get(command);
  if (help === undefined) {
    help = (await runCli([...command.split(" "), "--help"])).stdout;
    helpCache.set(command, help);
  }
  return help;
}

/** The argv after `rlvm-fleet` in a shell line, or null when the line runs something else. */
export function rlvmFleetArgv(line: string): string[] | null {
  // The last "rlvm-fleet " on the line is the program (a cron line names the user rlvm-fleet first).
  const match = /^(?:.*[\s/])?(?:npx )?rlvm-fleet\s+(.*)$/.exec(
    line.replace(/\s*(?:>|2>&1|\|\||;|&&).*$/, ""),
  );
  if (match === null || match[1] === undefined) return null;
  return match[1]
    .split(/\s+/)
    .filter((word) => word !== "")
    .map((word) => word.replace(/^'(.*)'$/, "$1"));
}

/** Problems with one rlvm-fleet argv: an unknown command or option. */
export async function commandLineProblems(argv: string[]): Promise<string[]> {
  const [name, ...words] = argv;
  if (name === undefined || name.startsWith("-"))
    return name === "--help" || name === "--version" ? [] : [`no command in ${argv.join(" ")}`];
  // A command group (`report merge`): its subcommand's help lists the options.
  const sub = GROUPS.has(name) ? words[0] : undefined;
  const command = sub === undefined ? name : `${name} ${sub}`;
  const rest = sub === undefined ? words : words.slice(1);
  const help = await helpOf(command);
  if (!help.includes(`Usage: rlvm-fleet ${command}`)) return [`unknown command ${command}`];
  return rest
    .filter((word) => word.startsWith("-"))
    .map((option) => option.split("=")[0] ?? option)
    .filter(
      (option) =>
        !new RegExp(`(^|[ ,])${option.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}([ ,<]|$)`, "m").test(help),
    )
    .map((option) => `${command} has no option ${option}`);
}
