// The agent's stdout as a stream: complete lines parsed as they arrive, noise tolerated and counted.
import { agentEvent, PROTOCOL_VERSION, type AgentEvent } from "./protocol.js";

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
  onInvalid: (event: string, reason: string) => void,
): EventParser {
  let buffer = "";
  /** A line too long was dropped: the rest of it, up to its newline, is dropped too. */
  let skipping = false;
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
      const reason = `${issue?.path.join(".") ?? ""}: ${issue?.message ?? ""}`;
      // A line of our protocol that breaks it (an unknown code, a missing field) is the agent's bug
      // or a tampered agent, not noise.
      if (isOurs(json)) return onInvalid(String(json.event), reason);
      return onNoise(trimmed, `not a valid event (${reason})`);
    }
    onEvent(parsed.data);
  };
  return {
    push(chunk) {
      buffer += chunk.toString();
      if (skipping) {
        // Resynchronise at the next newline: what follows the cut is the same line, never a new one.
        const newline = buffer.indexOf("\n");
        if (newline === -1) {
          buffer = "";
          return;
        }
        buffer = buffer.slice(newline + 1);
        skipping = false;
      }
      let newline: number;
      while ((newline = buffer.indexOf("\n")) !== -1) {
        handle(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
      }
      // A line this long is not an event; keep memory bounded.
      if (buffer.length > MAX_LINE) {
        onNoise(buffer.slice(0, 200), "line too long");
        buffer = "";
        skipping = true;
      }
    },
    end() {
      if (buffer !== "" && !skipping) handle(buffer);
      buffer = "";
      skipping = false;
    },
  };
}

function isOurs(json: unknown): json is { v: number; event: unknown } {
  return (
    typeof json === "object" && json !== null && "v" in json && json.v === PROTOCOL_VERSION && "event" in json
  );
}
