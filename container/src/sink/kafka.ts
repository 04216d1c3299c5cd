/**
 * The Kafka sink (SINK_URL=kafka://… or kafka+ssl://…). It takes the batcher's landing objects
 * like any sink and publishes them: a data object's record lines to `<prefix>.<schema>.<table>`
 * (one message per record, key = the row's key columns as JSON, value = the record line, headers
 * `__lsn`/`__seq`, a tombstone after each delete), schema manifests to the compacted
 * `<prefix>._schema` keyed by table, and the engine's state object to the compacted
 * `<prefix>._cdc_state` keyed by slot — so the engine keeps its state where its data goes, as with
 * object stores.
 *
 * put() resolves only when the brokers have acknowledged every message of the object (acks=all,
 * idempotent producer), which is what lets the engine confirm the position. A transient failure
 * (broker down, leader moving) is retried inside put() with backoff, with a fresh producer, and
 * the puts of one topic go out one after the other: a later object of a table is never sent
 * before an earlier one has been acknowledged, so per-key order holds even across retries. A
 * retry may publish some messages twice (consumers de-duplicate by (__lsn, __seq)). Permanent
 * failures (authorization, missing topic with creation off, a message over the broker's limit)
 * reject with SinkPermanentError.
 *
 * Kafka cannot delete messages: delete() is a no-op, and get() of a data object answers
 * "absent", so after a crash the engine replays the last round's objects rather than skipping
 * them (more duplicates, never a gap).
 *
 * The versioned methods (writer fencing, issue 10) mean here: create() publishes (a data object is
 * always "created", since a replay is de-duplicated by consumers; a manifest already in `_schema`
 * is "exists"); read()/stat() of the state give the slot's latest record in `_cdc_state` with
 * `<partition>:<offset>` as its version (data objects have no version: "absent"); replace()
 * compares the version it was given with the topic's latest record for the slot and only then
 * produces. Kafka has no conditional produce, so that check and the produce are not one atomic
 * step: fencing on Kafka is best-effort, and PostgreSQL's one walsender per slot is what keeps two
 * instances from streaming at once (docs/engine.md, "Writer fencing on Kafka").
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import type { Admin, MessageToProduce, Producer } from "@platformatic/kafka" with { "resolution-mode": "import" };
import type { KafkaSettings } from "../config";
import type { LandingSink, ObjectVersion, VersionedObject } from "./types";
import { SinkConditionFailedError, SinkPermanentError } from "./types";
import { landingTarget, recordMessage } from "./kafka-records";
import { kafkaSasl, type KafkaAuthDeps } from "./kafka-auth";

export interface KafkaSinkOptions {
  url: string;
  brokers: string[];
  tls: boolean;
  settings: KafkaSettings;
  logger?: { warn(obj: object, msg: string): void };
  /** Backoff between attempts of a failing put (ms). */
  initialDelayMs?: number;
  maxDelayMs?: number;
  auth?: KafkaAuthDeps;
}

type Message = MessageToProduce<Buffer, Buffer | null, Buffer, Buffer>;

/** One record of a small compacted topic as readAll returns it. */
export interface TopicRecord {
  value: Buffer | null;
  lsn?: string;
  seq?: string;
  partition: number;
  offset: bigint;
}

type KafkaLibrary = typeof import("@platformatic/kafka", { with: { "resolution-mode": "import" } });
let library: Promise<KafkaLibrary> | undefined;
/** The client is an ECM module; this engine is CommonJS, so it is loaded with import(). */
const kafkaLibrary = (): Promise<KafkaLibrary> => (library ??= import("@platformatic/kafka"));

/** Bytes per partition in one produce request, well under the brokers' default 1 MiB record-batch limit. */
const PARTITION_BYTES = 640 * 1024;
const CHUNK_MESSAGES = 20_000;

const LSN_HEADER = Buffer.from("__lsn");
const SEQ_HEADER = Buffer.from("__seq");

/** Kafka protocol error codes that retrying cannot fix. */
const PERMANENT_CODES = new Map<number, string>([
  [29, "TOPIC_AUTHORIZATION_FAILED"],
  [31, "CLUSTER_AUTHORIZATION_FAILED"],
  [58, "SASL_AUTHENTICATION_FAILED"],
  [10, "MESSAGE_TOO_LARGE"],
  [18, "RECORD_LIST_TOO_LARGE"],
  [33, "UNSUPPORTED_SASL_MECHANISM"],
  [35, "UNSUPPORTED_VERSION"],
  [40, "INVALID_CONFIG"],
  [38, "INVALID_REPLICATION_FACTOR"],
  [37, "INVALID_PARTITIONS"],
  [17, "INVALID_TOPIC_EXCEPTION"],
  [87, "INVALID_RECORD"],
]);

/** Every protocol error code inside a client error (they nest: MultipleErrors → errors → cause). */
export function kafkaErrorCodes(err: unknown, seen = new Set<unknown>()): number[] {
  if (err === null || typeof err !== "object" || seen.has(err)) return [];
  seen.add(err);
  const e = err as { apiCode?: unknown; errors?: unknown[]; cause?: unknown };
  const codes = typeof e.apiCode === "number" ? [e.apiCode] : [];
  for (const inner of e.errors ?? []) codes.push(...kafkaErrorCodes(inner, seen));
  return [...codes, ...kafkaErrorCodes(e.cause, seen)];
}

/** The broker does not know the topic (the client reports that as its own error, without the code). */
export function isUnknownTopic(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return kafkaErrorCodes(err).includes(3) || (e?.code === "PLT_KFK_USER" && /^Unknown topic /.test(e.message ?? ""));
}

const TLS_PERMANENT = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT_ALTNAME_INVALID|unable to get local issuer/i;

function messageOf(err: unknown): string {
  const e = err as { message?: string; errors?: unknown[]; cause?: unknown };
  const inner = [...(e?.errors ?? []), e?.cause].filter(Boolean).map(messageOf).filter(Boolean);
  return [e?.message ?? String(err), ...new Set(inner)].join(": ");
}

export class KafkaSink implements LandingSink {
  readonly url: string;
  private readonly settings: KafkaSettings;
  private producer: Producer<Buffer, Buffer | null, Buffer, Buffer> | undefined;
  private admin: Admin | undefined;
  /** Topic → its partition count, once it is known to exist (created if allowed). */
  private readonly topics = new Map<string, Promise<number>>();
  /** Per table, the manifests known (from `_schema` and this process's puts), oldest first. */
  private readonly manifests = new Map<string, { since: string; body: Buffer; key: string[] }[]>();
  private manifestsLoaded: Promise<void> | undefined;
  /** Per topic, the last put: the next one waits for it (per-key order). */
  private readonly tails = new Map<string, Promise<unknown>>();
  private readonly closing = new AbortController();
  /** The state topic's latest record per key as read so far, and where that read ended (latestState). */
  private stateLatest = new Map<string, TopicRecord>();
  private stateCursor = new Map<number, bigint>();
  /** The engine's writer-epoch check, run before every retry of a put (see setFence). */
  private fence: (() => Promise<void>) | undefined;
  private readonly connection: { tls?: { ca?: Buffer } ; sasl?: ReturnType<typeof kafkaSasl> };

  constructor(private readonly options: KafkaSinkOptions) {
    this.url = options.url;
    this.settings = options.settings;
    const tls = options.tls ? { ...(options.settings.caFile ? { ca: readFileSync(options.settings.caFile) } : {}) } : undefined;
    this.connection = { ...(tls ? { tls } : {}), ...(options.settings.auth !== "none" ? { sasl: kafkaSasl(options.settings, options.brokers, options.auth) } : {}) };
  }

  get stateTopic(): string {
    return `${this.settings.topicPrefix}._cdc_state`;
  }

  get schemaTopic(): string {
    return `${this.settings.topicPrefix}._schema`;
  }

  dataTopic(table: string): string {
    return `${this.settings.topicPrefix}.${table}`;
  }

  private base(clientId: string) {
    return {
      clientId,
      bootstrapBrokers: this.options.brokers,
      ...this.connection,
      connectTimeout: 10_000,
      requestTimeout: 30_000,
      retries: 2,
      retryDelay: 250,
    };
  }

  private async getProducer(): Promise<Producer<Buffer, Buffer | null, Buffer, Buffer>> {
    const { Producer, compatibilityPartitioner } = await kafkaLibrary();
    this.producer ??= new Producer<Buffer, Buffer | null, Buffer, Buffer>({
      ...this.base("cdc-engine"),
      idempotent: true,
      acks: -1,
      autocreateTopics: false,
      partitioner: compatibilityPartitioner,
    });
    return this.producer;
  }

  private async getAdmin(): Promise<Admin> {
    const { Admin } = await kafkaLibrary();
    this.admin ??= new Admin(this.base("cdc-engine-admin"));
    return this.admin;
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    const target = landingTarget(key);
    if (!target) throw new SinkPermanentError(this.url, `cannot map the landing key ${key} to a Kafka topic`);
    const buffer = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    switch (target.kind) {
      case "probe":
        return;
      case "state":
        await this.inOrder(this.stateTopic, key, async () => [{ topic: this.stateTopic, key: Buffer.from(target.slot), value: buffer }], { compacted: true });
        return;
      case "manifest": {
        const manifest = JSON.parse(buffer.toString("utf8")) as { key?: string[] };
        const value = buffer.toString("utf8").trimEnd();
        const [lsnHex, seq] = target.since.split("-");
        await this.inOrder(this.schemaTopic, key, async () => [
          { topic: this.schemaTopic, key: Buffer.from(target.table), value: Buffer.from(value), headers: new Map([[Buffer.from("__lsn"), Buffer.from(BigInt(`0x${lsnHex}`).toString())], [Buffer.from("__seq"), Buffer.from(String(Number(seq)))]]) },
        ], { compacted: true });
        this.remember(target.table, { since: target.since, body: buffer, key: manifest.key ?? [] });
        return;
      }
      case "data":
        return this.inOrder(this.dataTopic(target.table), key, async (partitions) => this.dataMessages(target.table, buffer, partitions), { compacted: false });
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    return (await this.read(key))?.body;
  }

  /**
   * Publishes the object. Data objects are always "created": Kafka cannot tell whether a replayed
   * range was published before, and consumers de-duplicate by (__lsn, __seq). A manifest whose
   * table and position are in `_schema` already is "exists" (manifests are write-once).
   */
  async create(key: string, body: Uint8Array): Promise<"created" | "exists"> {
    const target = landingTarget(key);
    if (target?.kind === "manifest") {
      await this.loadManifests();
      if (this.manifests.get(target.table)?.some((m) => m.since === target.since)) return "exists";
    }
    await this.put(key, body);
    return "created";
  }

  /**
   * The state: the slot's latest record in `_cdc_state`, versioned `<partition>:<offset>`. A
   * manifest: versioned by its position (write-once). A data object: undefined, as Kafka cannot
   * look up what an object became (the engine then replays it rather than skip it).
   */
  async read(key: string): Promise<VersionedObject | undefined> {
    const target = landingTarget(key);
    if (target?.kind === "state") return this.latestState(target.slot);
    if (target?.kind === "manifest") {
      await this.loadManifests();
      const body = this.manifests.get(target.table)?.find((m) => m.since === target.since)?.body;
      return body ? { body, version: `manifest:${target.since}` } : undefined;
    }
    return undefined;
  }

  async stat(key: string): Promise<ObjectVersion | undefined> {
    return (await this.read(key))?.version;
  }

  /**
   * Compare-and-swap of the state, best-effort: the slot's latest record in `_cdc_state` must be
   * `expected` (null: no record), then the new one is produced and its offset is the new version.
   * Another producer can still slip in between the check and the produce (Kafka has no conditional
   * produce); the next check of either instance then sees the other's record.
   */
  async replace(key: string, body: Uint8Array, expected: ObjectVersion | null): Promise<ObjectVersion> {
    const target = landingTarget(key);
    if (target?.kind !== "state") throw new SinkPermanentError(this.url, `a compare-and-swap write is only defined for the engine state on Kafka, not for ${key}`);
    const current = await this.latestState(target.slot);
    if ((current?.version ?? null) !== expected) throw new SinkConditionFailedError(this.url, key);
    const buffer = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    const offsets: string[] = [];
    await this.inOrder(this.stateTopic, key, async () => [{ topic: this.stateTopic, key: Buffer.from(target.slot), value: buffer }], { compacted: true }, offsets);
    const version = offsets.at(-1);
    if (version !== undefined) return version;
    // The brokers answered without an offset: take the latest record, if it is this one.
    const after = await this.latestState(target.slot);
    if (after && Buffer.compare(Buffer.from(after.body), buffer) === 0) return after.version;
    throw new SinkConditionFailedError(this.url, key);
  }

  /**
   * Messages cannot be withdrawn: only the state can be "deleted", by a tombstone for the slot,
   * and only while its latest record is still `version`. Anything else is left (false).
   */
  async deleteVersion(key: string, version: ObjectVersion): Promise<boolean> {
    const target = landingTarget(key);
    if (target?.kind !== "state") return false;
    const current = await this.latestState(target.slot);
    if (current?.version !== version) return false;
    await this.inOrder(this.stateTopic, key, async () => [{ topic: this.stateTopic, key: Buffer.from(target.slot), value: null }], { compacted: true });
    return true;
  }

  /**
   * The engine's writer-epoch check (EngineState.checkFence): run before every retry of a put, so
   * a fenced instance stops instead of publishing again (as the RetryingSink does for object stores).
   */
  setFence(check: (() => Promise<void>) | undefined): void {
    this.fence = check;
  }

  /**
   * The slot's latest state record. The state topic is read on from where the last read ended
   * (each flush round writes the state, and compaction of the active segment lags, so reading it
   * whole every time would grow with the engine's age); compaction keeps every key's latest
   * record, so nothing newer than the cursor is lost.
   */
  private async latestState(slot: string): Promise<VersionedObject | undefined> {
    const { records, ends, reset } = await this.readFrom(this.stateTopic, this.stateCursor);
    if (reset) this.stateLatest.clear();
    for (const [key, list] of records) this.stateLatest.set(key, list[list.length - 1]);
    this.stateCursor = ends;
    const last = this.stateLatest.get(slot);
    return last?.value ? { body: last.value, version: `${last.partition}:${last.offset}` } : undefined;
  }

  async delete(): Promise<void> {
    // Kafka messages cannot be deleted; consumers de-duplicate by (__lsn, __seq).
  }

  async close(): Promise<void> {
    this.closing.abort();
    await Promise.allSettled([this.producer?.close(true), this.admin?.close()]);
    this.producer = undefined;
    this.admin = undefined;
  }

  private remember(table: string, manifest: { since: string; body: Buffer; key: string[] }): void {
    const list = this.manifests.get(table) ?? [];
    if (!list.some((m) => m.since === manifest.since)) list.push(manifest);
    list.sort((a, b) => (a.since < b.since ? -1 : a.since > b.since ? 1 : 0));
    this.manifests.set(table, list);
  }

  private async loadManifests(): Promise<void> {
    this.manifestsLoaded ??= (async () => {
      for (const [table, messages] of await this.readAll(this.schemaTopic)) {
        for (const { value, lsn, seq } of messages) {
          if (!value || lsn === undefined || seq === undefined) continue;
          const since = `${BigInt(lsn).toString(16).toUpperCase().padStart(16, "0")}-${seq.padStart(10, "0")}`;
          this.remember(table, { since, body: Buffer.from(`${value.toString("utf8")}\n`), key: (JSON.parse(value.toString("utf8")) as { key?: string[] }).key ?? [] });
        }
      }
    })().catch((err: unknown) => {
      this.manifestsLoaded = undefined;
      throw err;
    });
    return this.manifestsLoaded;
  }

  /** The key columns in force at a position: the latest manifest at or before it (else the first known). */
  private async keyColumns(table: string, position: string): Promise<string[]> {
    let list = this.manifests.get(table);
    if (!list) {
      await this.loadManifests();
      list = this.manifests.get(table);
    }
    if (!list || list.length === 0) throw new Error(`no schema manifest for ${table} in ${this.schemaTopic}; its records cannot be keyed`);
    let chosen = list[0];
    for (const m of list) if (m.since <= position) chosen = m;
    return chosen.key;
  }

  private async dataMessages(table: string, body: Buffer, partitions: number): Promise<Message[]> {
    const { compatibilityPartitioner } = await kafkaLibrary();
    const topic = this.dataTopic(table);
    const messages: Message[] = [];
    let keyColumns: string[] | undefined;
    for (let start = 0; start < body.length; ) {
      let end = body.indexOf(10, start);
      if (end < 0) end = body.length;
      // The value is the record's own bytes (no copy: the batch's buffer is not reused).
      const value = body.subarray(start, end);
      const line = body.toString("utf8", start, end);
      start = end + 1;
      if (line.length === 0) continue;
      const record = recordMessage(line, (keyColumns ??= await this.keyColumns(table, positionOf(line))));
      const headers = new Map([[LSN_HEADER, Buffer.from(record.lsn)], [SEQ_HEADER, Buffer.from(record.seq)]]);
      const key = Buffer.from(record.key);
      if (record.tableWide) {
        // A truncate or a re-snapshot barrier applies to every key: every partition gets it, in order.
        for (let partition = 0; partition < partitions; partition++) messages.push({ topic, partition, key, value, headers, timestamp: record.tsMs });
        continue;
      }
      // The Java client's partitioner (murmur2, positive), computed here so requests can be sized per partition.
      const partition = compatibilityPartitioner(undefined as never, key) % partitions;
      messages.push({ topic, partition, key, value, headers, timestamp: record.tsMs });
      if (record.op === "d" && this.settings.tombstones) messages.push({ topic, partition, key, value: null, headers, timestamp: record.tsMs });
    }
    return messages;
  }

  /**
   * Sends an object's messages after the previous put of the same topic finished, retrying
   * transient failures until they are acknowledged, a permanent failure, or close().
   */
  private inOrder(topic: string, key: string, build: (partitions: number) => Promise<Message[]>, options: { compacted: boolean }, offsets?: string[]): Promise<void> {
    const previous = this.tails.get(topic) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(() => this.deliver(topic, key, build, options, offsets));
    this.tails.set(topic, run);
    return run;
  }

  private async deliver(topic: string, key: string, build: (partitions: number) => Promise<Message[]>, options: { compacted: boolean }, offsets?: string[]): Promise<void> {
    let delay = this.options.initialDelayMs ?? 200;
    for (let attempt = 1; ; attempt++) {
      if (this.closing.signal.aborted) throw new SinkPermanentError(this.url, `the sink was closed before ${key} was acknowledged`);
      // A WriterFencedError from the check ends the put: a fenced instance publishes nothing more.
      if (attempt > 1 && this.fence) await this.fence();
      try {
        const partitions = await this.ensureTopic(topic, options.compacted);
        const messages = await build(partitions);
        await this.send(messages, offsets);
        return;
      } catch (err) {
        const permanent = this.permanent(err, topic, key);
        if (permanent) throw permanent;
        this.topics.delete(topic);
        this.options.logger?.warn({ err: messageOf(err), attempt, sink: this.url, topic }, `could not publish ${key}; retrying`);
        // A fresh producer (new producer id): after a failure the old one's sequence numbers may be out of step.
        const stale = this.producer;
        this.producer = undefined;
        await Promise.resolve(stale?.close(true)).catch(() => undefined);
        const wait = Math.random() * delay;
        delay = Math.min(delay * 2, this.options.maxDelayMs ?? 5_000);
        await new Promise<void>((resolve) => {
          const signal = this.closing.signal;
          const done = () => {
            clearTimeout(timer);
            signal.removeEventListener("abort", done);
            resolve();
          };
          const timer = setTimeout(done, wait);
          signal.addEventListener("abort", done, { once: true });
        });
      }
    }
  }

  /**
   * Sends in produce requests of up to PARTITION_BYTES (under the brokers' default 1 MiB
   * record-batch limit), the partitions in parallel but one request at a time per partition: the
   * client advances a partition's idempotence sequence only when a request is acknowledged, so two
   * requests in flight to one partition would share sequence numbers (the broker answers
   * OUT_OF_ORDER_SEQUENCE_NUMBER; measured). Each partition's messages keep their order.
   */
  private async send(messages: Message[], offsets?: string[]): Promise<void> {
    const producer = await this.getProducer();
    const byPartition = new Map<string, Message[]>();
    for (const m of messages) {
      const partition = `${m.topic}:${m.partition ?? 0}`;
      const list = byPartition.get(partition);
      if (list) list.push(m);
      else byPartition.set(partition, [m]);
    }
    const produce = async (chunk: Message[]) => {
      const result = await producer.send({ messages: chunk });
      // The base offset of the request: with one message (the state), that message's offset.
      for (const o of result.offsets ?? []) offsets?.push(`${o.partition}:${o.offset}`);
    };
    const sendPartition = async (list: Message[]) => {
      let chunk: Message[] = [];
      let bytes = 0;
      for (const m of list) {
        const size = (m.value?.length ?? 0) + m.key!.length + 64;
        if (chunk.length > 0 && (bytes + size > PARTITION_BYTES || chunk.length >= CHUNK_MESSAGES)) {
          await produce(chunk);
          chunk = [];
          bytes = 0;
        }
        chunk.push(m);
        bytes += size;
      }
      if (chunk.length > 0) await produce(chunk);
    };
    const results = await Promise.allSettled([...byPartition.values()].map(sendPartition));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
  }

  /** One attempt (doctor): the permanent reading of a failure, or the failure itself. */
  async sendOnce(messages: Message[], topic: string, key: string): Promise<void> {
    try {
      await this.send(messages);
    } catch (err) {
      throw this.permanent(err, topic, key) ?? err;
    }
  }

  /** The partition count of a topic, or undefined when it does not exist. */
  async readTopicPartitions(topic: string): Promise<number | undefined> {
    try {
      const metadata = await (await this.getAdmin()).metadata({ topics: [topic], forceUpdate: true });
      return metadata.topics.get(topic)?.partitionsCount;
    } catch (err) {
      if (isUnknownTopic(err)) return undefined;
      throw this.permanent(err, topic, topic) ?? err;
    }
  }

  /** The topic's partition count; creates it when missing (KAFKA_CREATE_TOPICS), else a permanent error. */
  ensureTopic(topic: string, compacted: boolean): Promise<number> {
    let known = this.topics.get(topic);
    if (!known) {
      known = this.describeOrCreate(topic, compacted).catch((err: unknown) => {
        throw this.permanent(err, topic, topic) ?? err;
      });
      known.catch(() => this.topics.delete(topic));
      this.topics.set(topic, known);
    }
    return known;
  }

  private async describeOrCreate(topic: string, compacted: boolean): Promise<number> {
    const admin = await this.getAdmin();
    const count = async () => {
      const metadata = await admin.metadata({ topics: [topic], forceUpdate: true });
      return metadata.topics.get(topic)?.partitionsCount;
    };
    try {
      const partitions = await count();
      if (partitions) return partitions;
    } catch (err) {
      if (!isUnknownTopic(err)) throw err;
    }
    if (!this.settings.createTopics) {
      throw new SinkPermanentError(
        this.url,
        `topic ${topic} does not exist and KAFKA_CREATE_TOPICS=false; create it (kafka-topics.sh --create --topic ${topic}${compacted ? " --partitions 1 --config cleanup.policy=compact" : ""}) or set KAFKA_CREATE_TOPICS=true`,
      );
    }
    try {
      await admin.createTopics({
        topics: [topic],
        partitions: compacted ? 1 : (this.settings.partitions ?? -1),
        replicas: this.settings.replication ?? -1,
        configs: compacted ? [{ name: "cleanup.policy", value: "compact" }] : [],
      });
    } catch (err) {
      // 36: TOPIC_ALREADY_EXISTS (another writer, or a retry) is what we wanted.
      if (!kafkaErrorCodes(err).includes(36)) throw err;
    }
    for (let i = 0; i < 50; i++) {
      const partitions = await count().catch(() => undefined);
      if (partitions) return partitions;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`topic ${topic} was created but does not show in the metadata yet`);
  }

  /** The one clear message for what retrying cannot fix, or undefined for a transient failure. */
  permanent(err: unknown, topic: string, key: string): SinkPermanentError | undefined {
    if (err instanceof SinkPermanentError) return err;
    const codes = kafkaErrorCodes(err);
    const principal = this.settings.auth === "none" ? "the engine's principal" : `the principal of KAFKA_AUTH=${this.settings.auth}${this.settings.username ? ` (${this.settings.username})` : ""}`;
    const prefix = this.settings.topicPrefix;
    if (codes.includes(58) || (err as { code?: string })?.code === "PLT_KFK_AUTHENTICATION") {
      return new SinkPermanentError(this.url, `the brokers rejected the credentials of ${principal} (${messageOf(err)}); check KAFKA_AUTH and its credentials`, { cause: err });
    }
    if (codes.includes(29) || codes.includes(31)) {
      return new SinkPermanentError(
        this.url,
        `${principal} is not authorized to write ${topic} (${PERMANENT_CODES.get(codes.includes(29) ? 29 : 31)}); grant it DESCRIBE, WRITE (and CREATE, with KAFKA_CREATE_TOPICS=true) on the topics with prefix ${prefix}. and IDEMPOTENT_WRITE on the cluster, e.g. kafka-acls.sh --add --allow-principal User:<name> --operation Describe --operation Write --operation Create --resource-pattern-type prefixed --topic ${prefix}. and --operation IdempotentWrite --cluster`,
        { cause: err },
      );
    }
    if (codes.includes(10) || codes.includes(18)) {
      return new SinkPermanentError(
        this.url,
        `a message of ${key} is larger than the broker accepts for ${topic} (${PERMANENT_CODES.get(codes.includes(10) ? 10 : 18)}); raise max.message.bytes on the topic (or message.max.bytes on the brokers)`,
        { cause: err },
      );
    }
    const permanentCode = codes.find((c) => PERMANENT_CODES.has(c));
    if (permanentCode !== undefined) return new SinkPermanentError(this.url, `${topic}: ${PERMANENT_CODES.get(permanentCode)} (${messageOf(err)})`, { cause: err });
    if (TLS_PERMANENT.test(`${(err as { code?: string })?.code ?? ""} ${messageOf(err)}`)) {
      return new SinkPermanentError(this.url, `the TLS certificate of the brokers is not trusted (${messageOf(err)}); set KAFKA_CA_FILE to the CA bundle that signed it`, { cause: err });
    }
    return undefined;
  }

  /** Every message of a (small, compacted) topic, per key, in offset order. */
  async readAll(topic: string): Promise<Map<string, TopicRecord[]>> {
    return (await this.readFrom(topic)).records;
  }

  /**
   * The messages of a topic from `from` (per partition; the start when absent) to its current end,
   * and that end. `reset`: a partition ended before `from` (the topic was deleted and created
   * again), so it was read from its start.
   */
  private async readFrom(topic: string, from?: ReadonlyMap<number, bigint>): Promise<{ records: Map<string, TopicRecord[]>; ends: Map<number, bigint>; reset: boolean }> {
    const out = new Map<string, TopicRecord[]>();
    const reached = new Map<number, bigint>();
    const admin = await this.getAdmin();
    let metadata;
    try {
      metadata = await admin.metadata({ topics: [topic], forceUpdate: true });
    } catch (err) {
      if (isUnknownTopic(err)) return { records: out, ends: reached, reset: (from?.size ?? 0) > 0 };
      throw this.permanent(err, topic, topic) ?? err;
    }
    const info = metadata.topics.get(topic);
    if (!info) return { records: out, ends: reached, reset: (from?.size ?? 0) > 0 };
    let reset = false;
    const { Consumer } = await kafkaLibrary();
    const consumer = new Consumer<Buffer, Buffer, Buffer, Buffer>({ ...this.base("cdc-engine-reader"), groupId: "cdc-engine-unused" });
    try {
      const ends = (await consumer.listOffsets({ topics: [topic] })).get(topic) ?? [];
      const starts = ends.map((end, partition) => from?.get(partition) ?? 0n);
      if (starts.some((start, partition) => start > (ends[partition] ?? 0n))) {
        reset = true;
        starts.fill(0n);
      }
      for (let partition = 0; partition < info.partitionsCount; partition++) {
        const end = ends[partition] ?? 0n;
        let offset = starts[partition] ?? 0n;
        while (offset < end) {
          const response = await consumer.fetch({
            node: info.partitions[partition].leader,
            maxWaitTime: 500,
            topics: [{ topicId: info.id, partitions: [{ partition, fetchOffset: offset, partitionMaxBytes: 8 * 1024 * 1024, currentLeaderEpoch: -1, lastFetchedEpoch: -1 }] }],
          });
          const part = response.responses[0]?.partitions[0];
          if (!part || part.errorCode !== 0) throw new Error(`reading ${topic}[${partition}] failed with Kafka error ${part?.errorCode}`);
          const before = offset;
          // The log may start later (compaction, retention): continue from its start.
          if (part.logStartOffset > offset && (part.records ?? []).length === 0) offset = part.logStartOffset;
          for (const batch of part.records ?? []) {
            for (const record of batch.records) {
              const at = batch.firstOffset + BigInt(record.offsetDelta);
              if (at < offset) continue;
              offset = at + 1n;
              if (!record.key) continue;
              const header = (name: string) => record.headers.find(([k]) => k?.toString() === name)?.[1]?.toString();
              const list = out.get(record.key.toString()) ?? [];
              list.push({ value: record.value, lsn: header("__lsn"), seq: header("__seq"), partition, offset: at });
              out.set(record.key.toString(), list);
            }
          }
          if (offset === before) throw new Error(`reading ${topic}[${partition}] made no progress at offset ${offset}`);
        }
        reached.set(partition, offset > end ? offset : end);
      }
    } finally {
      await Promise.resolve(consumer.close(true)).catch(() => undefined);
    }
    return { records: out, ends: reached, reset };
  }
}

/** `<__lsn hex16>-<__seq 10>` of a record line, as manifests are named (for choosing the manifest in force). */
function positionOf(line: string): string {
  const lsn = /"__lsn":(\d+)/.exec(line)?.[1] ?? "0";
  const seq = /"__seq":(\d+)/.exec(line)?.[1] ?? "0";
  return `${BigInt(lsn).toString(16).toUpperCase().padStart(16, "0")}-${seq.padStart(10, "0")}`;
}

/**
 * For `cdc-engine doctor`: the brokers answer, the engine may describe (and, where they are
 * missing and KAFKA_CREATE_TOPICS=true, create) its topics, and may write: one probe message to
 * `<prefix>._cdc_state`, followed by its tombstone so compaction removes it again.
 */
export async function probeKafka(
  location: { url: string; brokers: string[]; tls: boolean },
  settings: KafkaSettings,
  tables: { schema: string; table: string }[],
  timeoutMs = 15_000,
): Promise<{ ok: boolean; message: string }> {
  const sink = new KafkaSink({ url: location.url, brokers: location.brokers, tls: location.tls, settings });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from the brokers within ${timeoutMs} ms; check the network path (security groups, firewall) to ${location.brokers.join(", ")}`)), timeoutMs);
  });
  const notes: string[] = [];
  try {
    await Promise.race([
      (async () => {
        for (const { schema, table } of tables) {
          const topic = sink.dataTopic(`${schema}.${table}`);
          const exists = (await sink.readTopicPartitions(topic)) !== undefined;
          if (!exists && !settings.createTopics) {
            throw new SinkPermanentError(location.url, `topic ${topic} does not exist and KAFKA_CREATE_TOPICS=false; create it (kafka-topics.sh --create --topic ${topic}) or set KAFKA_CREATE_TOPICS=true`);
          }
          if (!exists) notes.push(`${topic} will be created`);
        }
        const key = `_cdc_probe/${hostname().replace(/[^A-Za-z0-9_.-]/g, "_")}-${randomBytes(6).toString("hex")}`;
        const topic = sink.stateTopic;
        await sink.ensureTopic(topic, true);
        await sink.sendOnce([
          { topic, key: Buffer.from(key), value: Buffer.from(`cdc-engine doctor probe ${new Date().toISOString()}`) },
          { topic, key: Buffer.from(key), value: null },
        ], topic, key);
        notes.unshift(`wrote and tombstoned a probe message in ${topic}`);
      })(),
      deadline,
    ]);
    return { ok: true, message: `sink ${location.url} is writable (brokers reachable; ${notes.join("; ")})` };
  } catch (err) {
    if (err instanceof SinkPermanentError) return { ok: false, message: err.message };
    return { ok: false, message: `sink ${location.url}: probe failed: ${messageOf(err)}` };
  } finally {
    clearTimeout(timer);
    await sink.close().catch(() => undefined);
  }
}
