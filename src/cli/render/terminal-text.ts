// Text from a host, made safe for a terminal: every renderer passes what a host sent (facts, check
// details, errors, warnings, log lines) through here before it reaches stdout or stderr, so a host
// can never move the cursor, set the title or write the clipboard (OSC 52) in the operator's terminal.

// C0 controls, DEL and C1 controls (U+0080–U+009F: U+009B is a one-byte CSI on some terminals).
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;
// eslint-disable-next-line no-control-regex
const CONTROLS_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g;

const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r" };

function visible(char: string): string {
  if (char === "\t") return char;
  return NAMED[char] ?? `\\x${char.charCodeAt(0).toString(16).padStart(2, "0")}`;
}

/**
 * `text` with every control character shown visibly (ESC as `\x1b`, CR as `\r`, C1 and DEL as
 * `\x9b`, `\x7f`), tab kept. Newlines are shown as `\n` too, unless `keepNewlines`: only for a
 * renderer that splits the text into lines itself.
 */
export function terminalText(text: string, options: { keepNewlines?: boolean } = {}): string {
  return text.replace(options.keepNewlines === true ? CONTROLS_BUT_NEWLINE : CONTROLS, visible);
}

/**
 * A copy of `value` (a report, or any part of one) with every string in it passed through
 * `terminalText`: what the table and markdown renderers read, so that no field is missed. Idempotent:
 * the visible forms contain no control character.
 */
export function terminalSafe<T>(value: T, options: { keepNewlines?: boolean } = {}): T {
  if (typeof value === "string") return terminalText(value, options) as T;
  if (Array.isArray(value)) return value.map((item: unknown) => terminalSafe(item, options)) as T;
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [terminalText(key), terminalSafe(item, options)]),
    ) as T;
  }
  return value;
}
