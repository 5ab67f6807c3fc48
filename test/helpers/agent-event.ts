// Agent events for unit tests, built through the protocol's own schema: an event that drifts from the
// protocol fails to type-check, or fails the test that builds it, as the controller would reject it.
import type { z } from "zod";
import { agentEvent, PROTOCOL_VERSION, type AgentEvent } from "../../src/agent/protocol.js";

/** Any event's fields but `v` (each member of the union keeps its own fields). */
export type AgentEventFields<E = z.input<typeof agentEvent>> = E extends unknown ? Omit<E, "v"> : never;

export function agentEventOf(fields: AgentEventFields): AgentEvent {
  return agentEvent.parse({ v: PROTOCOL_VERSION, ...fields });
}
