// Terminal styling that turns itself off: --no-color, NO_COLOR, or output that is not a terminal.

export interface Style {
  color: boolean;
  ok: (text: string) => string;
  bad: (text: string) => string;
  warn: (text: string) => string;
  dim: (text: string) => string;
  bold: (text: string) => string;
}

const ansi = (code: number, enabled: boolean) => (text: string) =>
  enabled ? `\u001b[${code}m${text}\u001b[0m` : text;

export function makeStyle(color: boolean): Style {
  return {
    color,
    ok: ansi(32, color),
    bad: ansi(31, color),
    warn: ansi(33, color),
    dim: ansi(2, color),
    bold: ansi(1, color),
  };
}
