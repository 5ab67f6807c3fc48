// Waiting for a precondition ("restic is running", "the lock is held") in a test. A wait that ends
// without it must fail the test: a case that went on regardless could pass without proving its claim.

export interface WaitOptions {
  timeoutMs: number;
  /** Pause between two polls. */
  intervalMs?: number;
  /** What the failure message shows besides the timeout: the state that did not come true. */
  detail?: () => string | Promise<string>;
}

type NotYet = false | null | undefined;

/**
 * Polls `condition` until it returns something other than false, null or undefined, and returns that.
 * Throws "timed out after N ms waiting for <what>" when `timeoutMs` passes first.
 */
export async function waitFor<T>(
  what: string,
  condition: () => T | NotYet | Promise<T | NotYet>,
  { timeoutMs, intervalMs = 100, detail }: WaitOptions,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== false && value !== null && value !== undefined) return value;
    if (Date.now() >= deadline) {
      const shown = detail === undefined ? "" : `: ${await detail()}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${shown}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
