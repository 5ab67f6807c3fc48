import { describe, expect, it } from "vitest";
import { waitFor } from "../../helpers/wait-for.js";

describe("waitFor", () => {
  it("fails when the condition never comes true, naming what it waited for and the state", async () => {
    let polls = 0;
    const started = Date.now();
    await expect(
      waitFor("restic to run", () => ++polls > 1000, {
        timeoutMs: 200,
        intervalMs: 20,
        detail: () => `${polls} polls, no restic`,
      }),
    ).rejects.toThrow(/^timed out after 200 ms waiting for restic to run: \d+ polls, no restic$/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(polls).toBeGreaterThan(2);
  });

  it("fails a condition that is false on every poll even with no time to wait", async () => {
    await expect(waitFor("the lock", () => false, { timeoutMs: 0 })).rejects.toThrow(
      "timed out after 0 ms waiting for the lock",
    );
  });

  it("returns the first value that is not false, null or undefined, async or not", async () => {
    let polls = 0;
    await expect(
      waitFor("a third poll", () => (++polls === 3 ? "ready" : null), { timeoutMs: 5_000, intervalMs: 1 }),
    ).resolves.toBe("ready");
    expect(polls).toBe(3);
    await expect(waitFor("a promise", async () => 0, { timeoutMs: 0 })).resolves.toBe(0);
  });
});
