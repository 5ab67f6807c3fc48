// The bench's settings, from BENCH_* environment variables: a bad value stops the bench with its name.

export function envList(name: string): string[] | undefined {
  const value = process.env[name];
  return value === undefined || value.trim() === "" ? undefined : value.split(",").map((v) => v.trim());
}

export function envCount(name: string, fallback: number): number {
  const value = process.env[name];
  if (value === undefined || value.trim() === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number, got "${value}"`);
  return n;
}

/** A list of whole numbers (sizes, milliseconds), at least `min` each; "none" is the empty list. */
export function envNumbers(name: string, fallback: readonly number[], min: number): number[] {
  const list = envList(name);
  if (list === undefined) return [...fallback];
  if (list.length === 1 && list[0] === "none") return [];
  const numbers = list.map(Number);
  if (numbers.some((n) => !Number.isInteger(n) || n < min))
    throw new Error(`${name} must be whole numbers of at least ${min}, got "${process.env[name]}"`);
  return numbers;
}

/** A subset of `choices` (all of `fallback` when unset); an unknown name stops the bench. */
export function envChoices<T extends string>(
  name: string,
  choices: readonly T[],
  fallback: readonly T[] = choices,
): Set<T> {
  const list = envList(name);
  if (list === undefined) return new Set(fallback);
  for (const value of list)
    if (!(choices as readonly string[]).includes(value))
      throw new Error(`${name}: unknown runner "${value}"`);
  return new Set(list as T[]);
}
