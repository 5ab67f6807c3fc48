#!/usr/bin/env node
// `npm run demo`: the CLI's own demo (`rlvm-fleet demo`, three loopback hosts). `npm run demo -- --lvm`:
// the LVM demo, which boots the VM tier's Debian guest and so needs this checkout's test harness
// (test/vm/demo-lvm.ts, run with tsx). Ctrl-C reaches the child, which cleans up; this waits for it.
import { spawn } from "node:child_process";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const args = process.argv.slice(2);
const lvm = args.includes("--lvm");
const argv = lvm
  ? ["--import", "tsx", join(root, "test/vm/demo-lvm.ts"), ...args.filter((a) => a !== "--lvm")]
  : [join(root, "bin/rlvm-fleet.js"), "demo", ...args];
const child = spawn(process.execPath, argv, { stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => {});
child.on("close", (code, signal) => process.exit(code ?? (signal === "SIGINT" ? 130 : 1)));
