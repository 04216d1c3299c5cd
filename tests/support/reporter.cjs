"use strict";
// Mocha's spec reporter, plus one plain closing line ("N passed, N failed, N skipped") that CI
// systems which do not parse mocha's own summary can read, and each test file's wall time (its
// hooks included), slowest first: the suite has a 25-minute budget on a 2-core machine, and the
// per-test times mocha prints leave out the before/after hooks where servers and Spark start.
const Mocha = require("mocha");
const path = require("node:path");
const { EVENT_RUN_END, EVENT_SUITE_BEGIN, EVENT_SUITE_END } = Mocha.Runner.constants;

class SpecWithTotals extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const started = new Map();
    const seconds = new Map();
    runner.on(EVENT_SUITE_BEGIN, (suite) => {
      if (suite.file && !started.has(suite.file)) started.set(suite.file, Date.now());
    });
    runner.on(EVENT_SUITE_END, (suite) => {
      if (suite.file && started.has(suite.file)) seconds.set(suite.file, (Date.now() - started.get(suite.file)) / 1000);
    });
    runner.once(EVENT_RUN_END, () => {
      const { passes, failures, pending } = this.stats;
      const files = [...seconds].sort((a, b) => b[1] - a[1]);
      if (files.length > 1) {
        process.stdout.write("\nwall time per test file, slowest first:\n");
        for (const [file, s] of files) process.stdout.write(`${s.toFixed(1).padStart(8)} s  ${path.relative(process.cwd(), file)}\n`);
      }
      process.stdout.write(`tests: ${passes} passed, ${failures} failed, ${pending} skipped\n`);
    });
  }
}

module.exports = SpecWithTotals;
