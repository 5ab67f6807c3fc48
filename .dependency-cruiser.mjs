// The layering of src/ (DESIGN §11, and the README's Layout for where it differs), checked by
// `npm run deps` and `npm test`. Imports point one way; each rule names what a layer may not import.
// Type-only imports count: a type is as much a dependency on another layer's shape as a value.

// The bottom: modules every layer may import, which import nothing but each other. protocol.ts is
// the controller–agent contract: config rules, the report and the hints reuse it.
const BASE = "^src/(errors|version|duration|validation)\\.ts$|^src/agent/protocol\\.ts$";
const STORES = "^src/(inventory|config)/";
const MIDDLE = "^src/(agent|transport|plan|report)/";
const not = (path) => ({ path: "^src/", pathNot: path });

export default {
  forbidden: [
    {
      name: "no-circular",
      comment: "No import cycle anywhere in src/.",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true },
    },
    {
      name: "ssh2-only-in-transport",
      comment: "ssh2 and its types never leave src/transport/.",
      severity: "error",
      from: { pathNot: "^src/transport/" },
      to: { path: "(^|/)node_modules/(@types/)?ssh2/" },
    },
    {
      name: "base-imports-only-base",
      comment: "errors, version, duration, validation and the agent contract sit below every layer.",
      severity: "error",
      from: { path: BASE },
      to: not(BASE),
    },
    {
      name: "config-imports-base",
      comment: "ResticLVM configs: schemas and the normalised model, on the base alone.",
      severity: "error",
      from: { path: "^src/config/" },
      to: not(`${BASE}|^src/config/`),
    },
    {
      name: "inventory-imports-config-and-base",
      comment: "The inventory reuses the config rules (names, paths); the config never reads the inventory.",
      severity: "error",
      from: { path: "^src/inventory/" },
      to: not(`${BASE}|${STORES}`),
    },
    {
      name: "plan-imports-stores",
      comment: "Planning is pure: inventory + configs -> per-host plans.",
      severity: "error",
      from: { path: "^src/plan/" },
      to: not(`${BASE}|${STORES}|^src/plan/`),
    },
    {
      name: "transport-imports-base",
      comment: "SSH: connect, host keys, the remote command, sudo; it knows nothing of plans or reports.",
      severity: "error",
      from: { path: "^src/transport/" },
      to: not(`${BASE}|^src/transport/`),
    },
    {
      name: "agent-imports-plan-and-stores",
      comment: "Agent delivery and the wire: it encodes a host's plan for the agent (plan-lines.ts).",
      severity: "error",
      from: { path: "^src/agent/" },
      to: not(`${BASE}|${STORES}|^src/(agent|plan)/`),
    },
    {
      name: "report-imports-contract-and-base",
      comment: "The report schema and its aggregation: the agent contract and the base only.",
      severity: "error",
      from: { path: "^src/report/" },
      to: not(`${BASE}|^src/report/`),
    },
    {
      name: "run-imports-below",
      comment: "The run drives agent, transport and plan into a report; never the CLI or the demo.",
      severity: "error",
      from: { path: "^src/run/" },
      to: not(`${BASE}|${STORES}|${MIDDLE}|^src/run/`),
    },
    {
      name: "render-imports-report",
      comment:
        "Renderers are pure functions of a report (or of plan's document): never run/, transport/ or the CLI.",
      severity: "error",
      from: { path: "^src/cli/render/" },
      to: not(`${BASE}|^src/report/|^src/plan/plan-document\\.ts$|^src/cli/render/`),
    },
    {
      name: "demo-imports-base",
      comment: "The demo runs the CLI through a function main.ts hands it, so it imports no layer above.",
      severity: "error",
      from: { path: "^src/demo/" },
      to: not(`${BASE}|^src/demo/`),
    },
    {
      name: "only-cli-imports-demo",
      comment: "The demo is a command: only src/cli/ starts it.",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/(cli|demo)/" },
      to: { path: "^src/demo/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
  },
};
