// What a run tells its watcher while hosts run: the renderers' input, apart from the report itself.
import type { HostResult } from "./report-schema.js";

export type ProgressStep = "connecting" | "running" | "progress" | "log" | "done";

/** restic backup's latest status (the agent's progress event), with the repository's masked label. */
export interface ResticProgress {
  job: string;
  repo: string;
  /** 0 to 1 (restic's percent_done), null while restic does not know. */
  fraction: number | null;
  bytesDone: number | null;
  bytesTotal: number | null;
  filesDone: number | null;
  filesTotal: number | null;
  etaS: number | null;
}

export interface ProgressEvent {
  host: string;
  step: ProgressStep;
  /** "running": what the agent reported last; "log": one line of its stderr; "done": the host's status. */
  detail?: string;
  status?: HostResult["status"];
  /** "progress": restic's status. */
  restic?: ResticProgress;
}
