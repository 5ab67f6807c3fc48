// `report merge FILE...`: the shards' reports as one report, in the formats and files of a run.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { UsageError } from "../../errors.js";
import { mergeReports, parseReportFile } from "../../report/merge-reports.js";
import type { CliIo } from "../io.js";
import { checkOutputDirectories, writeReportOutputs, type FleetStyles } from "../run-fleet-command.js";

export interface ReportMergeOptions {
  format: string;
  report?: string;
  junit?: string;
  metrics?: string;
  color: boolean;
}

export function reportMergeCommand(
  files: string[],
  options: ReportMergeOptions,
  io: CliIo,
  style: FleetStyles,
): number {
  const reports = files.map((file) => ({ file, report: parseReportFile(file, readText(file, io)) }));
  const merged = mergeReports(reports);
  checkOutputDirectories(options, io);
  writeReportOutputs(merged, options, io, style);
  return merged.exit_code;
}

function readText(file: string, io: CliIo): string {
  try {
    return readFileSync(resolve(io.cwd, file), "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(`${file} cannot be read`, {
      problems: [
        {
          file,
          path: "",
          message: code === "ENOENT" ? "the report does not exist" : `the report cannot be read (${code})`,
        },
      ],
    });
  }
}
