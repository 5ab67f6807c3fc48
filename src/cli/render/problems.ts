// Render user errors: one line per problem with file and TOML path, and its hint below.
import { relative } from "node:path";
import type { Problem } from "../../errors.js";
import type { Style } from "./style.js";

export function renderProblems(
  headline: string,
  problems: readonly Problem[],
  hint: string | undefined,
  style: Style,
  cwd: string,
): string {
  const count = problems.length;
  const lines = [`${style.bad("✗")} ${headline}${count > 1 ? ` (${count} problems)` : ""}`];
  for (const problem of problems) {
    const file = displayPath(problem.file, cwd);
    const where = problem.path === "" ? file : `${file}: ${problem.path}`;
    lines.push(`  ${style.bold(where)}: ${problem.message}`);
    if (problem.hint !== undefined) lines.push(`    ${style.dim(`hint: ${problem.hint}`)}`);
  }
  if (hint !== undefined) lines.push(style.dim(`hint: ${hint}`));
  return `${lines.join("\n")}\n`;
}

/** Paths below the working directory are shown relative to it, the way a user typed them. */
export function displayPath(path: string, cwd: string): string {
  if (!path.startsWith("/")) return path;
  const rel = relative(cwd, path);
  return rel.startsWith("..") || rel === "" ? path : rel;
}
