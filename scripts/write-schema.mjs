#!/usr/bin/env node
// Regenerate schema/report.schema.json from the zod schema (npm run schema). A unit test keeps them equal.
import { writeFileSync } from "node:fs";
import { reportJsonSchema } from "../dist/report/json-schema.js";

writeFileSync(
  new URL("../schema/report.schema.json", import.meta.url),
  `${JSON.stringify(reportJsonSchema(), null, 2)}\n`,
);
