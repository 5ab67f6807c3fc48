// SIGTERM ends a run the same way as SIGINT (Ctrl-C): both reach the one interrupt handler.
import { describe, expect, it } from "vitest";
import { processIo } from "../../../src/cli/io.js";

describe("processIo().onInterrupt", () => {
  it("calls the handler on SIGINT and on SIGTERM, until it is removed", () => {
    const signals: string[] = [];
    const before = { int: process.listenerCount("SIGINT"), term: process.listenerCount("SIGTERM") };
    const remove = processIo().onInterrupt(() => signals.push("signal"));
    process.emit("SIGINT");
    process.emit("SIGTERM");
    expect(signals).toEqual(["signal", "signal"]);
    remove();
    expect(process.listenerCount("SIGINT")).toBe(before.int);
    expect(process.listenerCount("SIGTERM")).toBe(before.term);
  });
});
