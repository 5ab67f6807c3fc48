// The agent's stdout as a stream: complete lines parsed as they arrive, noise tolerated and counted.
import { agentEvent, type AgentEvent } from "./protocol.js";

// restic's forget and snapshots JSON ride inside events: allow large lines, but not unbounded ones.
const MAX_LINE = 8 * 1024 * 1024;

export interface EventParser {
  push(chunk: Buffer | string): void;
  /** Flush a last line without a newline. */
  end(): void;
}

export function parseEvents(
  onEvent: (event: AgentEvent) => void,
  onNoise: (line: string, reason: string) => void,
): EventParser {
  let buffer = "";
  const handle = (line: string) => {
    const trimmed = line.trim();
    if (trimmed === "") return;
    if (!trimmed.startsWith("{")) return onNoise(trimmed, "not JSON");
    let json: unknown;
    try {
      json = JSON.parse(trimmed);
    } catch {
      return onNoise(trimmed, "invalid JSON");
    }
    const parsed = agentEvent.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return onNoise(trimmed, `not a valid event (${issue?.path.join(".") ?? ""}: ${issue?.message ?? ""})`);
    }
    onEvent(parsed.data);
  };
  return {
    push(chunk) {
      buffer += chunk.toString();
      let newline: number;
      while ((newline = buffer.indexOf("\n")) !== -1) {
        handle(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
      }
      // A line this long is not an event; keep memory bounded.
      if (buffer.length > MAX_LINE) {
        onNoise(buffer.slice(0, 200), "line too long");
        buffer = "";
      }
    },
    end() {
      if (buffer !== "") handle(buffer);
      buffer = "";
    },
  };
}
