import js from "@eslint/js";
import tseslint from "typescript-eslint";
import globals from "globals";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "coverage/", "rlvm-fleet-demo/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      // Only src/cli/ touches process: the core is a library that reports, never exits.
      "no-restricted-globals": ["error", { name: "process", message: "Only src/cli/ touches process." }],
    },
  },
  {
    files: ["src/cli/**/*.ts", "test/**/*.ts", "bench/**/*.ts", "vitest.config.ts"],
    rules: { "no-restricted-globals": "off" },
  },
  {
    files: ["bin/**/*.js", "scripts/**/*.mjs", "*.js"],
    languageOptions: { globals: globals.node },
  },
);
