// Shared by the inventory and config loaders: TOML reading, zod issues turned into problems with
// TOML paths and did-you-mean hints, and the checks every string value gets.
import { readFileSync } from "node:fs";
import { parse as parseToml, TomlError } from "smol-toml";
import type { z } from "zod";
import { formatTomlPath, type Problem } from "./errors.js";

export type TomlRead = { ok: true; data: Record<string, unknown> } | { ok: false; problem: Problem };

export function readTomlFile(file: string, what: string): TomlRead {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === "ENOENT" ? "does not exist" : code === "EACCES" ? "is not readable" : String(error);
    return {
      ok: false,
      problem: { file, path: "", message: `${what} ${reason}`, hint: hintForMissing(what) },
    };
  }
  try {
    return { ok: true, data: parseToml(text) as Record<string, unknown> };
  } catch (error) {
    if (error instanceof TomlError) {
      const firstLine = error.message.split("\n")[0] ?? "invalid TOML";
      return {
        ok: false,
        problem: {
          file: `${file}:${error.line}:${error.column}`,
          path: "",
          message: firstLine.replace(/^Invalid TOML document: /, "invalid TOML: "),
          hint: "fix the TOML syntax at that line and column",
        },
      };
    }
    throw error;
  }
}

function hintForMissing(what: string): string {
  return what === "inventory"
    ? "check the --inventory path"
    : "check the host's `config` setting (relative paths are relative to the inventory file)";
}

/** Closest candidate by edit distance, if it is close enough to be a likely typo. */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const limit = Math.max(2, Math.floor(word.length / 3));
  return bestDistance <= limit ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

export function suggestion(word: string, candidates: Iterable<string>): string {
  const match = didYouMean(word, candidates);
  return match === undefined ? "" : ` (did you mean "${match}"?)`;
}

/**
 * NUL and newlines have no business in any value or key of these files, and would be a way to smuggle
 * a second line into what reaches a host.
 */
export function findControlCharacters(file: string, value: unknown, path: PropertyKey[] = []): Problem[] {
  const problems: Problem[] = [];
  const bad = (s: string) => /[\0\n\r]/.test(s);
  if (typeof value === "string") {
    if (bad(value)) {
      problems.push({
        file,
        path: formatTomlPath(path),
        message: "contains a NUL, newline or carriage return, which no value may contain",
      });
    }
  } else if (Array.isArray(value)) {
    value.forEach((item, index) => problems.push(...findControlCharacters(file, item, [...path, index])));
  } else if (value !== null && typeof value === "object" && !(value instanceof Date)) {
    for (const [key, item] of Object.entries(value)) {
      if (bad(key)) {
        problems.push({
          file,
          path: formatTomlPath(path),
          message: `a key contains a NUL, newline or carriage return: ${JSON.stringify(key)}`,
        });
      } else {
        problems.push(...findControlCharacters(file, item, [...path, key]));
      }
    }
  }
  return problems;
}

/** Turn zod issues into problems: TOML path, what was expected, and a did-you-mean for unknown keys. */
export function zodProblems(file: string, schema: z.ZodType, issues: readonly z.core.$ZodIssue[]): Problem[] {
  const problems: Problem[] = [];
  for (const issue of issues) {
    if (issue.code === "unrecognized_keys") {
      const known = knownKeysAt(schema, issue.path);
      for (const key of issue.keys) {
        problems.push({
          file,
          path: formatTomlPath([...issue.path, key]),
          message: `unknown key "${key}"${suggestion(key, known)}`,
          hint: known.length > 0 ? `allowed here: ${known.join(", ")}` : undefined,
        });
      }
    } else if (issue.code === "invalid_union") {
      // A tagged choice failed everywhere: report the branch errors of the closest branch.
      const nested = issue.errors.flat();
      if (nested.length > 0) problems.push(...zodProblems(file, schema, nested.map(withPrefix(issue.path))));
      else problems.push({ file, path: formatTomlPath(issue.path), message: issue.message });
    } else {
      // Our own rules write "message\nhint".
      const [message = "", ...hint] = describeIssue(issue).split("\n");
      problems.push({
        file,
        path: formatTomlPath(issue.path),
        message,
        ...(hint.length > 0 ? { hint: hint.join(" ") } : {}),
      });
    }
  }
  return problems;
}

function withPrefix(prefix: PropertyKey[]) {
  return (issue: z.core.$ZodIssue): z.core.$ZodIssue => ({ ...issue, path: [...prefix, ...issue.path] });
}

const EXPECTED: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "a whole number",
  boolean: "true or false",
  array: "an array",
  object: "a table",
  record: "a table",
};

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_type") {
    const received = (issue as { input?: unknown }).input;
    const expected = EXPECTED[issue.expected] ?? issue.expected;
    if (received === undefined) return `missing required key (expected ${expected})`;
    return `expected ${expected}, got ${describeValue(received)}`;
  }
  return issue.message;
}

export function describeValue(value: unknown): string {
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  if (Array.isArray(value)) return "an array";
  if (value instanceof Date) return "a date";
  if (value !== null && typeof value === "object") return "a table";
  return `${typeof value} ${String(value)}`;
}

type SchemaDef = { type: string; shape?: Record<string, z.ZodType>; [key: string]: unknown };

/** The keys an object schema allows at `path`, following arrays, records, optionals and pipes. */
function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let current: z.ZodType | undefined = unwrap(schema);
  for (const part of path) {
    if (current === undefined) return [];
    const def = current._zod.def as SchemaDef;
    if (def.type === "object") current = def.shape?.[String(part)];
    else if (def.type === "array") current = def["element"] as z.ZodType;
    else if (def.type === "record") current = def["valueType"] as z.ZodType;
    else return [];
    current = current === undefined ? undefined : unwrap(current);
  }
  const def = current?._zod.def as SchemaDef | undefined;
  return def?.type === "object" && def.shape !== undefined ? Object.keys(def.shape) : [];
}

function unwrap(schema: z.ZodType): z.ZodType {
  let current = schema;
  for (;;) {
    const def = current._zod.def as SchemaDef;
    if (def.type === "optional" || def.type === "default" || def.type === "nullable") {
      current = def["innerType"] as z.ZodType;
    } else if (def.type === "pipe") {
      current = def["in"] as z.ZodType;
    } else return current;
  }
}
