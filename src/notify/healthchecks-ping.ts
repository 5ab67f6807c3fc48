// --ping-url: the healthchecks.io protocol (also what its self-hosted and compatible services speak).
// URL/start when the run starts, URL on success, URL/fail otherwise, the summary as the POST body.
// A ping is a notification, never a part of the run: it fails with a warning, bounded in time.
import { UsageError } from "../errors.js";

/** Each ping gives up after this long: a dead ping server costs a run at most this much. */
export const PING_TIMEOUT_MS = 10_000;
/** healthchecks.io keeps the first 100 kB of a body; the end of the summary (its recap) matters most. */
export const PING_BODY_LIMIT = 100_000;

export function parsePingUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--ping-url: "${maskedText(text)}" is not a URL`, {
      hint: "give the check's ping URL, such as https://hc-ping.com/UUID",
    });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new UsageError(`--ping-url: only http and https URLs are pinged, not ${url.protocol}`, {
      hint: "give the check's ping URL, such as https://hc-ping.com/UUID",
    });
  return url;
}

/** A URL for messages: its path is the check's secret (whoever has it can ping), so only the host shows. */
export function maskedPingUrl(url: URL, suffix = ""): string {
  return `${url.protocol}//${url.host}/…${suffix}`;
}

function maskedText(text: string): string {
  return text.length > 12 ? `${text.slice(0, 12)}…` : text;
}

/** `URL` with `/start` or `/fail` after its path (a trailing slash dropped), its query kept. */
export function pingTarget(url: URL, suffix: "" | "/start" | "/fail"): URL {
  const target = new URL(url);
  target.pathname = `${target.pathname.replace(/\/+$/, "")}${suffix}`;
  return target;
}

export interface PingSession {
  /** Success for exit 0 and 3, fail otherwise; resolves (never rejects) within the timeout. */
  finish: (exitCode: number, summary: string) => Promise<void>;
}

/** Sends URL/start without waiting for it: the run goes on while the ping server answers. */
export function startPing(
  url: URL,
  warn: (message: string) => void,
  timeoutMs = PING_TIMEOUT_MS,
): PingSession {
  const startCancel = new AbortController();
  const startTimeout = AbortSignal.timeout(timeoutMs);
  const started = ping(url, "/start", "", warn, AbortSignal.any([startTimeout, startCancel.signal]), () =>
    startTimeout.aborted
      ? `no answer within ${timeoutMs / 1000} s`
      : "no answer by the end of the run; gave up on it",
  );
  return {
    finish: async (exitCode, summary) => {
      // One deadline for both: the start must arrive before the end, and a dead server may delay the
      // run by one timeout in all, however short the run was.
      const deadline = AbortSignal.timeout(timeoutMs);
      await Promise.race([started, new Promise((resolve) => deadline.addEventListener("abort", resolve))]);
      startCancel.abort();
      await started;
      const suffix = exitCode === 0 || exitCode === 3 ? "" : "/fail";
      await ping(
        url,
        suffix,
        limitBody(summary),
        warn,
        deadline,
        () => `no answer within ${timeoutMs / 1000} s`,
      );
    },
  };
}

async function ping(
  url: URL,
  suffix: "" | "/start" | "/fail",
  body: string,
  warn: (message: string) => void,
  signal: AbortSignal,
  whyAborted: () => string,
): Promise<void> {
  const where = maskedPingUrl(url, suffix);
  try {
    const response = await fetch(pingTarget(url, suffix), {
      method: "POST",
      body,
      headers: { "content-type": "text/plain; charset=utf-8" },
      signal,
    });
    await response.body?.cancel();
    if (!response.ok) warn(`--ping-url: ${where} answered HTTP ${response.status}`);
  } catch (error) {
    warn(`--ping-url: ${where}: ${signal.aborted ? whyAborted() : reason(error)}`);
  }
}

function reason(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  if (typeof cause?.code === "string") return cause.code;
  if (typeof cause?.message === "string") return cause.message;
  return error instanceof Error ? error.message : String(error);
}

/** The last PING_BODY_LIMIT bytes of `text` (the recap is at the end), marked when cut. */
function limitBody(text: string): string {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= PING_BODY_LIMIT) return text;
  const marker = "[… the start of the summary is cut: see the report]\n";
  // Decoding a cut UTF-8 sequence yields U+FFFD at the start at worst.
  return marker + bytes.subarray(bytes.length - PING_BODY_LIMIT + marker.length).toString("utf8");
}
