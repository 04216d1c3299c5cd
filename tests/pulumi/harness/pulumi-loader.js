// Loads index.ts the way the Pulumi CLI's Node.js runtime does (@pulumi/pulumi cmd/run/run.js):
// its own ts-node (the vendored 7.0.1 unless the project has one) with the project's TypeScript and
// tsconfig.json, in transpile-only mode (as PULUMI_NODEJS_TRANSPILE_ONLY=true; `npm run typecheck`
// does the type checking). Config and mocks are set first, as the CLI sets PULUMI_CONFIG before the
// program starts. Prints one JSON line: the program's export names, or its error.
"use strict";
const path = require("path");
const repo = path.resolve(__dirname, "..", "..", "..");
process.env.PULUMI_CONFIG = process.env.LOADER_CONFIG;
process.env.PULUMI_CONFIG_SECRET_KEYS = process.env.LOADER_SECRET_KEYS || "[]";
const pulumi = require("@pulumi/pulumi");
const tsutils = require("@pulumi/pulumi/tsutils");
const { tsnodeRequire, typescriptRequire } = tsutils.typeScriptRequireStrings();
require(tsnodeRequire).register({
  compiler: typescriptRequire,
  transpileOnly: true,
  project: path.join(repo, "tsconfig.json"),
  skipProject: false,
  compilerOptions: {},
});
pulumi.runtime
  .setMocks({ newResource: (a) => ({ id: `${a.name}-id`, state: a.inputs }), call: (a) => { throw new Error(`unexpected invoke ${a.token}`); } }, "postgres-cdc-multicloud", "dev", true)
  .then(async () => {
    const program = require(path.join(repo, "index.ts"));
    await pulumi.runtime.disconnect();
    process.stdout.write(JSON.stringify({ ok: true, tsNode: tsnodeRequire.includes("vendor") ? "vendored" : "project", exports: Object.keys(program).sort() }) + "\n");
    process.exit(0);
  })
  .catch((err) => {
    process.stdout.write(JSON.stringify({ ok: false, error: String(err && err.message) }) + "\n");
    process.exit(1);
  });
