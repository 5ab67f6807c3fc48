// Agent events for unit tests, built through the protocol's own schema: an event that drifts from the
// protocol fails to type-check, or fails the test that builds it, as the controller would reject it.
// The job tracker's events include the controller's split of status reads (latest, latest_failed).
import type { z } from "zod";
import { PROTOCOL_VERSION, trackedEvent, type TrackedEvent } from "../../src/agent/protocol.js";

/** Any event's fields but `v` (each member of the union keeps its own fields). */
export type AgentEventFields<E = z.input<typeof trackedEvent>> = E extends unknown ? Omit<E, "v"> : never;

export function agentEventOf(fields: AgentEventFields): TrackedEvent {
  return trackedEvent.parse({ v: PROTOCOL_VERSION, ...fields });
}
