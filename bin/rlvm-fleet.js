#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (built by `npm run build`, and by `npm ci` via prepare).
import "../dist/cli/bin.js";
