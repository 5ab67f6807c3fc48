// What a run tells its watcher while hosts run: the renderers' input, apart from the report itself.
import type { HostResult } from "./report-schema.js";

export type ProgressStep = "connecting" | "running" | "log" | "done";

export interface ProgressEvent {
  host: string;
  step: ProgressStep;
  /** "running": what the agent reported last; "log": one line of its stderr; "done": the host's status. */
  detail?: string;
  status?: HostResult["status"];
}
