#!/usr/bin/env node
"use strict";
require("../dist/demo/demo.js")
  .runDemo(process.argv.slice(2))
  .then(
    (code) => process.exit(code),
    (err) => {
      console.error(`cdc-demo: ${err && err.message ? err.message : String(err)}`);
      process.exit(1);
    },
  );
