// The report's JSON Schema, generated from the zod schema so the two cannot drift.
import { z } from "zod";
import { reportSchema } from "./report-schema.js";

export function reportJsonSchema(): Record<string, unknown> {
  return {
    $id: "https://rlvm-fleet.invalid/schema/report@1.json",
    title: "rlvm-fleet run report",
    ...z.toJSONSchema(reportSchema, { target: "draft-2020-12" }),
  };
}
