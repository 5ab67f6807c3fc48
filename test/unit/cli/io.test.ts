// SIGTERM ends a run the same way as SIGINT (Ctrl-C): both reach the one interrupt handler.
import { describe, expect, it } from "vitest";
import { parseOpenFilesLimit, processIo } from "../../../src/cli/io.js";

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

describe("parseOpenFilesLimit", () => {
  it("reads the soft limit of /proc/PID/limits, and nothing from a text without it or unlimited", () => {
    const limits = [
      "Limit                     Soft Limit           Hard Limit           Units     ",
      "Max processes             95393                95393                processes ",
      "Max open files            4096                 524288               files     ",
    ].join("\n");
    expect(parseOpenFilesLimit(limits)).toBe(4096);
    expect(
      parseOpenFilesLimit("Max open files            unlimited            unlimited            files"),
    ).toBe(undefined);
    expect(parseOpenFilesLimit("")).toBe(undefined);
  });

  it("is what processIo gives as the open-files limit here", () => {
    expect(processIo().openFilesLimit?.()).toEqual(expect.any(Number));
  });
});
