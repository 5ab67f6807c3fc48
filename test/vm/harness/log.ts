// Progress of the VM tier on stderr (it is slow: say what it waits for), and the timings it measured.
const timings: { step: string; ms: number }[] = [];

export function vmLog(message: string): void {
  process.stderr.write(`${new Date().toISOString()} [vm] ${message}\n`);
}

export function recordTiming(step: string, ms: number): void {
  timings.push({ step, ms });
  vmLog(`timing: ${step}: ${(ms / 1000).toFixed(1)} s`);
}

export function recordedTimings(): readonly { step: string; ms: number }[] {
  return timings;
}
