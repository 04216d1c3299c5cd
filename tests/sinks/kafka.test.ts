/**
 * The Kafka sink against a real Apache Kafka broker (KRaft, started from Apache Kafka's jars; see
 * support/kafka-broker.ts), once for the file: a randomized workload over several tables with a
 * kill -9 of the engine and a broker restart in the middle, rebuilt from the topics by a consumer
 * and compared with the source row for row; keys, tombstones and headers; SASL/SCRAM failures
 * giving one clear message; doctor's probe. Token plumbing for the cloud mechanisms is checked
 * offline (no cloud identity exists here).
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { confirmedFlush, spawnEngine, startEngine, waitFor, type ChildEngine } from "../engine/fixtures/harness";
import { createWorkloadTables, runWorkload, WORKLOAD_TABLES } from "../engine/fixtures/workload";
import { loadConfig } from "../../container/src/config";
import { probeSink, SinkPermanentError } from "../../container/src/sink";
import { SinkConditionFailedError, WriterFencedError } from "../../container/src/sink/types";
import { EngineState } from "../../container/src/batching/state";
import { KafkaSink } from "../../container/src/sink/kafka";
import { recordMessage, topLevelFields } from "../../container/src/sink/kafka-records";
import { eventHubsScope, googleKafkaToken, kafkaSasl } from "../../container/src/sink/kafka-auth";
import { startKafka, type KafkaBroker } from "./support/kafka-broker";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const logged = (engine: ChildEngine, text: string) => async () => engine.logs.join("").includes(text);

interface Landed {
  value: Buffer | null;
  lsn?: string;
  seq?: string;
}

/** Reads a topic as a consumer would (every message, per key in log order), through the sink's reader. */
async function readTopic(bootstrap: string, topic: string): Promise<Map<string, Landed[]>> {
  const reader = new KafkaSink({ url: `kafka://${bootstrap}`, brokers: [bootstrap], tls: false, settings: loadConfig(baseEnv(bootstrap)).kafka });
  try {
    return await reader.readAll(topic);
  } finally {
    await reader.close();
  }
}

function baseEnv(bootstrap: string): Record<string, string> {
  return { PG_HOST: "127.0.0.1", PG_DATABASE: "postgres", PG_USER: "postgres", SINK_URL: `kafka://${bootstrap}`, LOG_LEVEL: "silent" };
}

const position = (m: Landed) => [BigInt(m.lsn ?? "0"), BigInt(m.seq ?? "0")] as const;
const later = (a: readonly [bigint, bigint], b: readonly [bigint, bigint]) => a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);

/**
 * The consumer side: de-duplicate by (__lsn, __seq), keep per key the record with the highest
 * position, drop keys whose latest record is a delete or that a later truncate/barrier covers.
 * Also checks what compaction relies on: a key's last message in the log is its latest state,
 * and every delete is followed by its tombstone.
 */
function rebuild(messages: Map<string, Landed[]>, table: string): Map<string, Record<string, unknown>> {
  const rows = new Map<string, { at: readonly [bigint, bigint]; record: Record<string, unknown> }>();
  let tableWide: readonly [bigint, bigint] | undefined;
  for (const [key, list] of messages) {
    let best: { at: readonly [bigint, bigint]; record: Record<string, unknown> } | undefined;
    for (const [i, m] of list.entries()) {
      if (m.value === null) {
        assert.ok(i > 0 && list[i - 1].value !== null && (JSON.parse(list[i - 1].value!.toString()) as { __op: string }).__op === "d", `${table} ${key}: a tombstone follows only a delete`);
        continue;
      }
      const record = JSON.parse(m.value.toString()) as Record<string, unknown>;
      assert.equal(String(record.__lsn), m.lsn, "__lsn header equals the record's");
      assert.equal(String(record.__seq), m.seq, "__seq header equals the record's");
      if (record.__op === "d") assert.equal(list[i + 1]?.value, null, `${table} ${key}: a tombstone follows every delete`);
      if (key === "{}") {
        assert.ok(record.__op === "t" || record.__op === "b");
        if (!tableWide || later(position(m), tableWide)) tableWide = position(m);
        continue;
      }
      if (!best || later(position(m), best.at)) best = { at: position(m), record };
    }
    if (!best || key === "{}") continue;
    // Per-key order: the last record of the key in the log is its latest (what compaction keeps).
    const lastRecord = [...list].reverse().find((m) => m.value !== null)!;
    assert.deepEqual(position(lastRecord), best.at, `${table} ${key}: the key's last message is its latest change`);
    rows.set(key, best);
  }
  const out = new Map<string, Record<string, unknown>>();
  for (const [key, { at, record }] of rows) {
    if (record.__op === "d") continue;
    if (tableWide && !later(at, tableWide)) continue;
    out.set(key, record);
  }
  return out;
}

const asText = (v: unknown): string | null => (v === null || v === undefined ? null : typeof v === "string" ? v : String(v));

async function assertTopicsMatchSource(pg: TestPostgres, bootstrap: string, prefix: string): Promise<void> {
  for (const table of WORKLOAD_TABLES) {
    const messages = await readTopic(bootstrap, `${prefix}.${table.name}`);
    const rebuilt = rebuild(messages, table.name);
    for (const [key, record] of rebuilt) assert.equal(key, JSON.stringify(Object.fromEntries(table.key.map((c) => [c, record[c]]))), "the message key is the row's primary key as a JSON object");
    const source = (await pg.query<Record<string, string | null>>(table.select)).map((r) => JSON.stringify(table.columns.map((c) => r[c]))).sort();
    const landed = [...rebuilt.values()].map((r) => JSON.stringify(table.columns.map((c) => asText(r[c])))).sort();
    const inSource = new Set(source);
    const inLanded = new Set(landed);
    assert.ok(
      landed.length === source.length && source.every((r) => inLanded.has(r)) && landed.every((r) => inSource.has(r)),
      `${table.name} rebuilt from Kafka (${landed.length} rows) differs from the source (${source.length}); only in the source: ${source.filter((r) => !inLanded.has(r)).slice(0, 5).join(" ")}; only in Kafka: ${landed.filter((r) => !inSource.has(r)).slice(0, 5).join(" ")}`,
    );
  }
}

describe("sinks: kafka:// against a real Apache Kafka broker (KRaft)", function () {
  this.timeout(120_000);
  let pg: TestPostgres;
  let broker: KafkaBroker;

  before(async () => {
    [pg, broker] = await Promise.all([startPostgres(), startKafka({ users: [{ name: "alice", password: "alice-secret" }] })]);
  });
  after(async () => {
    await broker?.dispose();
    await pg?.stop();
  });

  it("publishes a randomized workload over several tables that a consumer rebuilds equal to the source, through a kill -9 of the engine and a broker restart with bounded memory, never confirming what the broker has not acknowledged", async function () {
    this.timeout(300_000);
    await createWorkloadTables(pg, 1_000);
    // Captured but not rebuilt by the consumer: the bulk written while the broker is down.
    await pg.query("CREATE TABLE public.w_bulk (id integer PRIMARY KEY, payload text NOT NULL)");
    const slot = "kafka_slot";
    const prefix = "cdc";
    const env = {
      ...pg.env,
      SINK_URL: `kafka://${broker.bootstrap}`,
      KAFKA_TOPIC_PARTITIONS: "3",
      TABLE_INCLUDE: [...WORKLOAD_TABLES.map((t) => t.name), "public.w_bulk"].join(","),
      PG_SLOT: slot,
      PG_PUBLICATION: "kafka_pub",
      BATCH_MAX_SIZE: "500",
      BATCH_MAX_WAIT_MS: "100",
      HEARTBEAT_INTERVAL_MS: "500",
      HTTP_PORT: "0",
      LOG_LEVEL: "info",
    };
    let stop = false;
    const workload = runWorkload(pg, { clients: 1, transactionsPerClient: 100_000, seed: 15, keySpace: 3_000, stop: () => stop });
    let engine = spawnEngine(env);
    try {
      await waitFor("streaming", logged(engine, "streaming changes"), 60_000, 50);
      await sleep(800);
      engine.child.kill("SIGKILL");
      await engine.exited;
      engine = spawnEngine(env);
      await waitFor("streaming again", logged(engine, "streaming changes"), 60_000, 50);
      await sleep(500);

      // The broker goes away mid-stream: nothing committed meanwhile may be confirmed.
      await broker.stop();
      await sleep(500);
      const rows = await pg.query<{ lsn: string }>("INSERT INTO public.w_events VALUES (-1, 'during broker outage', 0) RETURNING (pg_current_wal_insert_lsn() - '0/0')::text AS lsn");
      const outageTxn = BigInt(rows[0].lsn);
      for (let waited = 0; waited < 1500; waited += 500) {
        await sleep(500);
        const confirmed = await confirmedFlush(pg, slot);
        assert.ok(confirmed < outageTxn, `confirmed_flush_lsn ${confirmed} passed ${outageTxn}, committed while the broker was down`);
      }
      // Bounded memory: far more than the batcher's budget (64 MiB) is committed while the broker is
      // down; the engine pauses reading from the slot instead of holding it (2 KB rows, uncompressed inline).
      const rssMiB = async (field: "VmRSS" | "VmHWM") => Number(new RegExp(`${field}:\\s+(\\d+)\\s+kB`).exec(await readFile(`/proc/${engine.child.pid}/status`, "utf8"))![1]) / 1024;
      const before = await rssMiB("VmRSS");
      const bulk = await pg.query<{ mb: string }>(`WITH w AS (INSERT INTO public.w_bulk SELECT i, repeat(md5(i::text), 60) FROM generate_series(1, 100000) i RETURNING length(payload))
        SELECT (sum(length) / 1048576)::text AS mb FROM w`);
      await sleep(2_000);
      const peak = await rssMiB("VmHWM");
      assert.ok(Number(bulk[0].mb) > 150, `the bulk is ${bulk[0].mb} MiB`);
      assert.ok(peak - before < 150, `the engine's resident memory grew by ${Math.round(peak - before)} MiB (from ${Math.round(before)} MiB) while ${bulk[0].mb} MiB of changes waited for the broker; it must pause reading instead`);
      await broker.start();
      stop = true;
      await workload;

      // Catch up: a marker transaction, then wait until the slot confirms past it.
      const marker = await pg.query<{ lsn: string }>("INSERT INTO public.w_events VALUES (-2, 'marker', 0) RETURNING (pg_current_wal_insert_lsn() - '0/0')::text AS lsn");
      await waitFor("the slot confirms past the marker", async () => (await confirmedFlush(pg, slot)) >= BigInt(marker[0].lsn), 60_000, 200);
      await assertTopicsMatchSource(pg, broker.bootstrap, prefix);
      const bulkKeys = [...(await readTopic(broker.bootstrap, `${prefix}.public.w_bulk`)).keys()];
      const bulkIds = new Set(bulkKeys.map((k) => (JSON.parse(k) as { id?: number }).id));
      const missing = Array.from({ length: 100_000 }, (_v, i) => i + 1).filter((id) => !bulkIds.has(id));
      assert.deepEqual(missing.slice(0, 5), [], `${missing.length} bulk rows never published after the broker came back (keys seen: ${bulkKeys.length}, e.g. ${bulkKeys.filter((k) => !/^\{"id":\d+\}$/.test(k)).slice(0, 3).join(" ")})`);

      // Schema manifests: one compacted message per table, keyed by table.
      const schemas = await readTopic(broker.bootstrap, `${prefix}._schema`);
      for (const table of WORKLOAD_TABLES) {
        const latest = schemas.get(table.name)?.at(-1);
        assert.ok(latest?.value, `a manifest for ${table.name}`);
        assert.deepEqual((JSON.parse(latest.value.toString()) as { key: string[] }).key, table.key);
      }
      // The engine state lives in the compacted state topic, keyed by slot.
      assert.ok((await readTopic(broker.bootstrap, `${prefix}._cdc_state`)).get(slot)?.length);
    } finally {
      stop = true;
      await workload.catch(() => undefined);
      engine.child.kill("SIGTERM");
      await engine.exited;
    }
  });

  it("stops with one clear message when SASL/SCRAM authenticates but the principal may not write, or the password is wrong; doctor says the same", async () => {
    const sasl = (password: string) => ({ ...pg.env, SINK_URL: `kafka://${broker.saslBootstrap}`, KAFKA_AUTH: "scram-sha-256", KAFKA_USERNAME: "alice", KAFKA_PASSWORD: password, PG_SLOT: "kafka_denied", TABLE_INCLUDE: "public.w_orders", HTTP_PORT: "0", LOG_LEVEL: "silent" });
    const denied = startEngine(sasl("alice-secret"));
    await assert.rejects(denied.done, (err: Error) => {
      assert.ok(err instanceof SinkPermanentError, String(err));
      assert.match(err.message, /KAFKA_AUTH=scram-sha-256 \(alice\) is not authorized to write cdc\._cdc_state \((TOPIC|CLUSTER)_AUTHORIZATION_FAILED\); grant it DESCRIBE, WRITE/);
      return true;
    });
    const wrong = startEngine(sasl("not-the-password"));
    await assert.rejects(wrong.done, (err: Error) => err instanceof SinkPermanentError && /rejected the credentials/.test(err.message) && !err.message.includes("not-the-password"));
    const probe = await probeSink(loadConfig(sasl("alice-secret")));
    assert.equal(probe.ok, false);
    assert.match(probe.message, /is not authorized/);
    const ok = await probeSink(loadConfig({ ...pg.env, SINK_URL: `kafka://${broker.bootstrap}`, TABLE_INCLUDE: "public.not_there_yet", LOG_LEVEL: "silent" }));
    assert.equal(ok.ok, true, ok.message);
    assert.match(ok.message, /wrote and tombstoned a probe message in cdc\._cdc_state; cdc\.public\.not_there_yet will be created/);
  });

  it("publishes over TLS with KAFKA_CA_FILE, and stops with one clear message when the brokers' certificate is not trusted", async () => {
    const env = { ...baseEnv(broker.sslBootstrap), SINK_URL: `kafka+ssl://${broker.sslBootstrap}`, KAFKA_TOPIC_PREFIX: "tls" };
    const trusted = new KafkaSink({ url: env.SINK_URL, brokers: [broker.sslBootstrap], tls: true, settings: loadConfig({ ...env, KAFKA_CA_FILE: broker.caFile }).kafka });
    try {
      await trusted.put("_cdc_state/tls_slot.json", Buffer.from('{"version":1}'));
      assert.equal(Buffer.from((await trusted.get("_cdc_state/tls_slot.json"))!).toString(), '{"version":1}');
    } finally {
      await trusted.close();
    }
    const untrusted = new KafkaSink({ url: env.SINK_URL, brokers: [broker.sslBootstrap], tls: true, settings: loadConfig(env).kafka });
    try {
      await assert.rejects(untrusted.put("_cdc_state/tls_slot.json", Buffer.from("{}")), (err: Error) => err instanceof SinkPermanentError && /TLS certificate of the brokers is not trusted .*set KAFKA_CA_FILE/.test(err.message));
    } finally {
      await untrusted.close();
    }
  });

  it("versions the state by its offset in the state topic: read/stat give the latest record, replace is a compare-and-swap on it, data objects have no version and are never withdrawn", async () => {
    const settings = loadConfig({ ...baseEnv(broker.bootstrap), KAFKA_TOPIC_PREFIX: "versioned" }).kafka;
    const sink = new KafkaSink({ url: `kafka://${broker.bootstrap}`, brokers: [broker.bootstrap], tls: false, settings });
    const other = new KafkaSink({ url: `kafka://${broker.bootstrap}`, brokers: [broker.bootstrap], tls: false, settings });
    try {
      const key = "_cdc_state/v_slot.json";
      assert.equal(await sink.read(key), undefined);
      assert.equal(await sink.stat(key), undefined);
      const first = await sink.replace(key, Buffer.from('{"n":1}'), null);
      assert.match(first, /^0:\d+$/);
      assert.deepEqual(await other.read(key), { body: Buffer.from('{"n":1}'), version: first }, "another instance reads the record and its offset");
      await assert.rejects(other.replace(key, Buffer.from('{"n":"x"}'), null), SinkConditionFailedError, "create-if-absent fails once a record exists");
      const second = await other.replace(key, Buffer.from('{"n":2}'), first);
      assert.notEqual(second, first);
      assert.equal(await sink.stat(key), second);
      await assert.rejects(sink.replace(key, Buffer.from('{"n":3}'), first), SinkConditionFailedError, "a stale version is refused");
      assert.equal(Buffer.from((await sink.get(key))!).toString(), '{"n":2}', "the refused write published nothing");
      // Another slot's state in the same topic is its own record.
      assert.equal(await sink.read("_cdc_state/v_other.json"), undefined);

      // Data objects: published every time (consumers de-duplicate), never versioned, never deleted.
      const manifest = Buffer.from(JSON.stringify({ table: "public.v", key: ["id"], columns: [] }) + "\n");
      assert.equal(await sink.create("cdc.public.v/_schema/0000000000000010-0000000000.json", manifest), "created");
      assert.equal(await other.create("cdc.public.v/_schema/0000000000000010-0000000000.json", manifest), "exists", "a manifest already in _schema is kept");
      const data = "cdc.public.v/date=2026-12-02/hour=00/0000000000000010-0000000000.ndjson";
      const line = Buffer.from('{"__op":"c","__deleted":"false","__lsn":16,"__seq":0,"__ts_ms":1,"id":1}\n');
      assert.equal(await sink.create(data, line), "created");
      assert.equal(await sink.create(data, line), "created", "a replay is published again");
      assert.equal(await sink.stat(data), undefined, "a data object has no version: the engine replays rather than skip it");
      assert.equal(await sink.deleteVersion(data, "0:0"), false);
      assert.equal((await readTopic(broker.bootstrap, "versioned.public.v")).get('{"id":1}')?.length, 2);
      // The state can be withdrawn only at the version seen (a tombstone).
      assert.equal(await sink.deleteVersion(key, first), false);
      assert.equal(await sink.deleteVersion(key, second), true);
      assert.equal(await other.read(key), undefined);
    } finally {
      await Promise.all([sink.close(), other.close()]);
    }
  });

  it("fences the older of two engine states on the same slot: the newer claim wins, the older one's check and save throw WriterFencedError", async () => {
    const settings = loadConfig({ ...baseEnv(broker.bootstrap), KAFKA_TOPIC_PREFIX: "fenced" }).kafka;
    const oldSink = new KafkaSink({ url: `kafka://${broker.bootstrap}`, brokers: [broker.bootstrap], tls: false, settings });
    const newSink = new KafkaSink({ url: `kafka://${broker.bootstrap}`, brokers: [broker.bootstrap], tls: false, settings });
    try {
      const older = await EngineState.load(oldSink, "f_slot", { host: "old", pid: 1, startedAt: "2026-12-02T00:00:00Z" });
      await older.save([]);
      await older.checkFence();
      const newer = await EngineState.load(newSink, "f_slot", { host: "new", pid: 2, startedAt: "2026-12-02T00:01:00Z" });
      assert.equal(newer.epoch, older.epoch + 1);
      await assert.rejects(older.checkFence(), (err: Error) => err instanceof WriterFencedError && /held by .*new/.test(err.message));
      await assert.rejects(older.save([]), WriterFencedError);
      await newer.save([]);
      await newer.checkFence();
    } finally {
      await Promise.all([oldSink.close(), newSink.close()]);
    }
  });

  it("requires existing topics when KAFKA_CREATE_TOPICS=false, naming the topic and the fix", async () => {
    const sink = new KafkaSink({ url: `kafka://${broker.bootstrap}`, brokers: [broker.bootstrap], tls: false, settings: loadConfig({ ...baseEnv(broker.bootstrap), KAFKA_CREATE_TOPICS: "false", KAFKA_TOPIC_PREFIX: "strict" }).kafka });
    try {
      await assert.rejects(sink.put("_cdc_state/s.json", Buffer.from("{}")), (err: Error) => err instanceof SinkPermanentError && /topic strict\._cdc_state does not exist and KAFKA_CREATE_TOPICS=false; create it/.test(err.message));
    } finally {
      await sink.close();
    }
  });
});

describe("sinks: kafka:// records, configuration and token plumbing (offline)", () => {
  it("keys a record by its key columns exactly as written, and table-wide records by {}", () => {
    const line = '{"__op":"u","__deleted":"false","__lsn":21900896,"__seq":9999999994,"__ts_ms":1795265975835,"id":9007199254740993,"doc":{"a":[1,{"b":"}"}]},"name":"x\\"y,z"}';
    assert.equal(topLevelFields(line).get("doc"), '{"a":[1,{"b":"}"}]}');
    const m = recordMessage(line, ["id"]);
    assert.deepEqual(m, { key: '{"id":9007199254740993}', op: "u", lsn: "21900896", seq: "9999999994", tsMs: 1795265975835n, tableWide: false });
    assert.equal(recordMessage(line, []).key, '{"id":9007199254740993,"doc":{"a":[1,{"b":"}"}]},"name":"x\\"y,z"}');
    assert.equal(recordMessage('{"__op":"t","__deleted":"false","__lsn":5,"__seq":1,"__ts_ms":1}', ["id"]).tableWide, true);
  });

  it("parses kafka:// and kafka+ssl:// URLs and rejects bad Kafka settings one line each", () => {
    const c = loadConfig({ PG_HOST: "h", PG_DATABASE: "d", PG_USER: "u", SINK_URL: "kafka+ssl://b-1.example.com:9096,b-2.example.com:9096", KAFKA_AUTH: "scram-sha-512", KAFKA_USERNAME: "cdc", KAFKA_PASSWORD: " secret " });
    assert.deepEqual(c.sink, { kind: "kafka", url: "kafka+ssl://b-1.example.com:9096,b-2.example.com:9096", brokers: ["b-1.example.com:9096", "b-2.example.com:9096"], tls: true });
    assert.equal(c.kafka.password, " secret ");
    assert.equal(c.kafka.topicPrefix, "cdc");
    assert.equal(c.kafka.tombstones, true);
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig({ PG_HOST: "h", PG_DATABASE: "d", PG_USER: "u", ...env });
        return [];
      } catch (err) {
        return (err as { problems: string[] }).problems;
      }
    };
    assert.match(problems({ SINK_URL: "kafka://broker" })[0], /^SINK_URL has "broker", which is not host:port/);
    assert.match(problems({ SINK_URL: "kafka://b:9092", KAFKA_AUTH: "scram-sha-256" })[0], /^KAFKA_AUTH=scram-sha-256 needs KAFKA_USERNAME and KAFKA_PASSWORD/);
    assert.match(problems({ SINK_URL: "kafka://b:9092", KAFKA_AUTH: "aws-msk-iam" })[0], /needs TLS: use SINK_URL=kafka\+ssl:\/\//);
    assert.match(problems({ SINK_URL: "kafka://b:9092", SINK_COMPRESSION: "gzip" })[0], /^SINK_COMPRESSION=gzip applies to landing files/);
    assert.match(problems({ SINK_URL: "kafka://b:9092", KAFKA_TOPIC_PREFIX: "a/b" })[0], /^KAFKA_TOPIC_PREFIX must be 1 to 120 of the characters/);
  });

  it("checks the writer epoch before every retry of a put: a fenced instance stops instead of publishing again", async () => {
    const sink = new KafkaSink({ url: "kafka://127.0.0.1:1", brokers: ["127.0.0.1:1"], tls: false, settings: loadConfig(baseEnv("127.0.0.1:1")).kafka, initialDelayMs: 1, maxDelayMs: 1 });
    let checks = 0;
    sink.setFence(async () => {
      checks++;
      throw new WriterFencedError(sink.url, "s", 1, 2, "other");
    });
    try {
      await assert.rejects(sink.put("_cdc_state/s.json", Buffer.from("{}")), WriterFencedError);
      assert.equal(checks, 1);
    } finally {
      await sink.close();
    }
  });

  it("hands the mechanisms' tokens to OAUTHBEARER: MSK IAM per region, Entra for the Event Hubs namespace, Google's wrapped access token", async () => {
    const settings = (auth: string, extra: Record<string, string> = {}) => loadConfig({ PG_HOST: "h", PG_DATABASE: "d", PG_USER: "u", SINK_URL: "kafka+ssl://x.example.com:9098", KAFKA_AUTH: auth, ...extra }).kafka;
    const regions: string[] = [];
    const aws = kafkaSasl(settings("aws-msk-iam"), ["boot-abc.c2.kafka-serverless.eu-west-1.amazonaws.com:9098"], { awsToken: async (r) => (regions.push(r), "aws-token") })!;
    assert.equal(aws.mechanism, "OAUTHBEARER");
    assert.equal(await aws.token!(), "aws-token");
    assert.deepEqual(regions, ["eu-west-1"]);
    const scopes: string[] = [];
    const azure = kafkaSasl(settings("azure-entra"), ["cdc-ns.servicebus.windows.net:9093"], { azureToken: async (s) => (scopes.push(s), "entra-token") })!;
    assert.equal(await azure.token!(), "entra-token");
    assert.deepEqual(scopes, ["https://cdc-ns.servicebus.windows.net/.default"]);
    assert.equal(eventHubsScope(["a.servicebus.windows.net:9093"]), "https://a.servicebus.windows.net/.default");
    const google = kafkaSasl(settings("google-adc"), ["bootstrap.c1.europe-west1.managedkafka.p.cloud.goog:9092"], {
      googleAccessToken: async () => ({ token: "ya29.access", principal: "cdc@p.iam.gserviceaccount.com", expiresAtMs: 1_800_000_000_000 }),
      now: () => 1_799_999_000_000,
    })!;
    const [header, payload, signature] = (await google.token!()).split(".").map((p) => Buffer.from(p, "base64url").toString());
    assert.deepEqual(JSON.parse(header), { typ: "JWT", alg: "GOOG_OAUTH2_TOKEN" });
    assert.deepEqual(JSON.parse(payload), { exp: 1_800_000_000, iat: 1_799_999_000, iss: "Google", sub: "cdc@p.iam.gserviceaccount.com", scope: "kafka" });
    assert.equal(signature, "ya29.access");
    assert.equal(googleKafkaToken("t", "p", 0).split(".").length, 3);
    assert.deepEqual(kafkaSasl(settings("scram-sha-512", { KAFKA_USERNAME: "u", KAFKA_PASSWORD: "p" }), ["x:1"]), { mechanism: "SCRAM-SHA-512", username: "u", password: "p" });
  });

  it("azure-entra as deployed: DefaultAzureCredential fetches the Event Hubs namespace's token for the user-assigned identity (AZURE_CLIENT_ID) from the Container Apps identity endpoint (a stand-in)", async () => {
    const requests: { url: URL; header: string | undefined }[] = [];
    // Stand-in for the identity endpoint Container Apps gives every container (IDENTITY_ENDPOINT / IDENTITY_HEADER).
    const identity: HttpServer = createHttpServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://127.0.0.1");
      requests.push({ url, header: req.headers["x-identity-header"] as string | undefined });
      const ok = url.searchParams.get("resource") === "https://cdc-ns.servicebus.windows.net" && url.searchParams.get("client_id") === "engine-identity-client-id" && req.headers["x-identity-header"] === "stand-in-header";
      res.writeHead(ok ? 200 : 400, { "content-type": "application/json" });
      res.end(JSON.stringify(ok ? { access_token: "eyJ.event-hubs-stand-in", expires_on: String(Math.floor(Date.now() / 1000) + 3600), resource: "https://cdc-ns.servicebus.windows.net", token_type: "Bearer" } : { error: "invalid_request" }));
    });
    await new Promise<void>((resolve) => identity.listen(0, "127.0.0.1", resolve));
    const saved = { ...process.env };
    try {
      for (const k of ["AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE", "MSI_ENDPOINT", "MSI_SECRET"]) delete process.env[k];
      Object.assign(process.env, { IDENTITY_ENDPOINT: `http://127.0.0.1:${(identity.address() as { port: number }).port}/msi/token`, IDENTITY_HEADER: "stand-in-header", AZURE_CLIENT_ID: "engine-identity-client-id" });
      const settings = loadConfig({ PG_HOST: "h", PG_DATABASE: "d", PG_USER: "u", SINK_URL: "kafka+ssl://cdc-ns.servicebus.windows.net:9093", KAFKA_AUTH: "azure-entra" }).kafka;
      const sasl = kafkaSasl(settings, ["cdc-ns.servicebus.windows.net:9093"])!;
      assert.equal(sasl.mechanism, "OAUTHBEARER");
      assert.equal(await sasl.token!(), "eyJ.event-hubs-stand-in");
      assert.ok(requests.length >= 1 && requests.every((r) => r.header === "stand-in-header"), JSON.stringify(requests.map((r) => r.url.search)));
    } finally {
      for (const k of ["IDENTITY_ENDPOINT", "IDENTITY_HEADER", "AZURE_CLIENT_ID"]) if (saved[k] === undefined) delete process.env[k];
      Object.assign(process.env, saved);
      await new Promise<void>((resolve) => identity.close(() => resolve()));
    }
  });
});
