// The one place that sets the process's exit status.
import { recordEventLoopStats } from "./event-loop-stats.js";
import { processIo } from "./io.js";
import { main } from "./main.js";

recordEventLoopStats(process.env);
process.exitCode = await main(process.argv.slice(2), processIo());
