// Kept in step with package.json by a unit test; a literal avoids reading package.json at start-up.
export const VERSION = "0.1.0";
