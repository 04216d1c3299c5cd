#!/usr/bin/env node
"use strict";
// The CLI validates with the Pulumi program's own settings parser (components/settings.ts), which
// is TypeScript run from source like the program itself, so the CLI runs from source through tsx.
require("tsx/cjs");
require("../src/cli.ts")
  .main(process.argv)
  .then((code) => {
    process.exitCode = code;
  });
