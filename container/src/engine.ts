/**
 * The engine's streaming path: source (slot, snapshot, pgoutput) → batching → sink, with the
 * delivery rule that PostgreSQL is only ever told (confirmed_flush_lsn) about transactions whose
 * every event is durable in the sink, and a reconnect loop around it.
 */
import type { Client } from "pg";
import type { Logger } from "pino";
import { backOff } from "exponential-backoff";
import type { EngineConfig } from "./config";
import type { EngineMetrics } from "./ops/metrics";
import { createSink } from "./sink";
import type { LandingSink } from "./sink/types";
import { SinkPermanentError, WriterFencedError } from "./sink/types";
import { Batcher } from "./batching/batcher";
import { EngineState } from "./batching/state";
import { TypeCatalog } from "./source/decoding/catalog";
import { closeClient, connect } from "./source/connection";
import { formatLsn, parseLsn } from "./source/lsn";
import { BinaryUnsupported, PgOutputDecoder } from "./source/pgoutput";
import { chooseBinary, type WireFormat } from "./source/binary-mode";
import { ReplicationStream, XLOG_HEADER, commitAtConsistentPoint, connectionOf, createSlot, enableFailover, receiveDeadline, serverVersionNum, walSenderTimeoutMs } from "./source/replication";
import { describeCost, serverTimeline, slotLossCause, snapshotCost } from "./source/failover";
import { ReadThrottle, copySnapshot } from "./source/snapshot";
import { prepareSource, SourceSetupError } from "./source/setup";
import { RecordTooLargeError, gateLargeMessages, isGathered } from "./source/large-rows";
import { permanentSourceError } from "./source/errors";
import { ResnapshotNeeded, markCovered, tablesToSnapshot } from "./source/coverage";
import { INCREMENTAL_MIN_VERSION, IncrementalSnapshots } from "./source/incremental-snapshot";

export interface EngineDeps {
  logger: Logger;
  metrics: EngineMetrics;
  signal: AbortSignal;
  /** The sink to write to; by default the one SINK_URL selects (tests pass a faulty one). */
  sink?: LandingSink;
}

/** How long a shutdown waits for the final flush (SIGTERM must end within 10 s). */
const SHUTDOWN_FLUSH_MS = 8_000;

/** The prefix of the heartbeat's logical message (pg_logical_emit_message). */
export const HEARTBEAT_PREFIX = "postgres-cdc-multicloud";

/** The slot is streaming to another process (a second instance during a rollout). */
export class SlotInUseError extends Error {
  constructor(
    readonly slot: string,
    readonly pid: number | undefined,
  ) {
    super(`replication slot ${slot} is in use by another consumer (PID ${pid ?? "unknown"}); waiting for it to be released`);
    this.name = "SlotInUseError";
  }
}

/** Errors that retrying cannot fix: runEngine rejects with them. */
const isFatal = (err: unknown): boolean =>
  err instanceof SinkPermanentError || err instanceof SourceSetupError || err instanceof RecordTooLargeError || err instanceof WriterFencedError;

const isSlotInUse = (err: unknown): boolean => err instanceof SlotInUseError || (err as { code?: string })?.code === "55006";

function slotInUse(slot: string, err: unknown): SlotInUseError {
  if (err instanceof SlotInUseError) return err;
  const pid = /PID (\d+)/i.exec((err as Error)?.message ?? "")?.[1];
  return new SlotInUseError(slot, pid ? Number(pid) : undefined);
}

/**
 * How a session ended without an error: stopped (shutdown, or SNAPSHOT_MODE=initial_only done), or
 * it met a table that needs a new snapshot (source/coverage.ts) and the next session starts at once.
 */
type SessionEnd = "stopped" | "resnapshot" | "text";

/** What a session reports to the retry loop: whether it got anywhere before it failed. */
interface SessionProgress {
  /** The session confirmed a new position to PostgreSQL: the failure after it is a new one, not a repeat. */
  confirmed: boolean;
}

/**
 * Runs until signal aborts (then: stop reading, flush, write state, confirm, close; resolve) or a
 * permanent error (reject). The one retry layer: every failed session is logged once and retried
 * with exponential backoff and full jitter; a session that confirmed something first starts a new
 * series (its failure is new, not the same one again). Permanent errors stop the engine with one
 * message naming the cause and the fix (source/errors.ts).
 */
export async function runEngine(config: EngineConfig, deps: EngineDeps): Promise<void> {
  const { logger, metrics, signal } = deps;
  metrics.phase("starting");
  const sink = deps.sink ?? (await createSink(config, { logger }));
  const permanent = (err: unknown): Error | undefined => (isFatal(err) ? (err as Error) : permanentSourceError(err, config));
  try {
    const catalog = new TypeCatalog();
    // A session fenced by a newer writer epoch ends the engine, even when the refusal surfaced
    // while the session was already winding down (a delayed write of a lost connection).
    const fence: SessionFence = {};
    // Binary mode off for good once a session met a type it cannot decode (PG_BINARY=auto).
    const wire: WireFormat = {};
    while (!signal.aborted) {
      let progress: SessionProgress = { confirmed: false };
      let fresh = false;
      try {
        const ended = await backOff(
          () => {
            progress = { confirmed: false };
            return runSession(config, deps, sink, catalog, progress, fence, wire);
          },
          {
            numOfAttempts: Number.MAX_SAFE_INTEGER,
            startingDelay: 500,
            timeMultiple: 2,
            maxDelay: 5_000,
            jitter: "full",
            retry: (err: unknown, attempt: number) => {
              if (signal.aborted || permanent(err) || fence.fenced) return false;
              if (progress.confirmed) {
                // Reported by the catch below, which starts a new series of attempts.
                fresh = true;
                return false;
              }
              reportFailure(config, deps, err, attempt);
              return true;
            },
          },
        );
        if (fence.fenced) throw fence.fenced;
        if (ended === "resnapshot" || ended === "text") continue;
        break; // the session stopped (shutdown, or SNAPSHOT_MODE=initial_only done)
      } catch (err) {
        if (fence.fenced) throw fence.fenced;
        if (signal.aborted && !permanent(err)) break;
        if (!fresh) throw permanent(err) ?? err;
        reportFailure(config, deps, err, 0);
      }
    }
  } finally {
    metrics.phase("stopping");
    await sink.close().catch(() => undefined);
  }
}

/** One log line and the phase (with its reason, for /readyz) for a session that failed and is retried. */
function reportFailure(config: EngineConfig, deps: EngineDeps, err: unknown, attempt: number): void {
  const { logger, metrics } = deps;
  if (isSlotInUse(err)) {
    const inUse = slotInUse(config.pg.slot, err);
    metrics.phase("waiting_for_slot", inUse.message);
    logger.warn({ slot: config.pg.slot, holderPid: inUse.pid, attempt }, inUse.message);
    return;
  }
  const message = (err as Error)?.message ?? String(err);
  metrics.phase("reconnecting", `PostgreSQL session failed: ${message}`);
  logger.warn({ err, attempt }, `PostgreSQL session failed (${message}); reconnecting with backoff (anything not confirmed is replayed from the slot)`);
}

interface SlotRow {
  slot_name: string;
  plugin: string | null;
  slot_type: string;
  database: string | null;
  active_pid: number | null;
  confirmed_flush_lsn: string | null;
}

/** Set once a session was refused by a newer writer epoch: the engine then stops. */
interface SessionFence {
  fenced?: WriterFencedError;
}

/**
 * One connection's life: set up the source, take the snapshot if one is due, stream until the
 * signal aborts ("stopped"). Every failure throws, for runEngine to classify and retry.
 */
async function runSession(config: EngineConfig, deps: EngineDeps, sink: LandingSink, catalog: TypeCatalog, progress: SessionProgress, fence: SessionFence, wire: WireFormat): Promise<SessionEnd> {
  const { logger, metrics, signal } = deps;
  // backOff may call again after its delay even though a shutdown began meanwhile.
  if (signal.aborted) return "stopped";
  const slot = config.pg.slot;
  const throttle = new ReadThrottle();
  let fail: (err: unknown) => void = () => undefined;
  const failed = new Promise<never>((_resolve, reject) => {
    fail = reject;
  });
  failed.catch(() => undefined);
  // The session's one cancellation scope: a shutdown, a failed flush round or the session's end
  // stops whatever still works for it (snapshot workers above all).
  const session = new AbortController();
  const endSession = (reason: unknown) => {
    if (!session.signal.aborted) session.abort(reason);
  };
  const onShutdown = () => endSession(new Error("snapshot interrupted: the engine is stopping"));
  if (signal.aborted) onShutdown();
  else signal.addEventListener("abort", onShutdown, { once: true });
  failed.catch(endSession);
  let onDurable = () => {};
  // Read once this session owns the slot (below): during a rollout the previous instance keeps
  // flushing until it releases the slot, and its last state is the one to resume from.
  let state = undefined as unknown as EngineState;
  const makeBatcher = () => new Batcher({
    sink,
    state,
    limits: config.batch,
    compression: config.compression,
    metrics,
    logger,
    signal,
    onDurable: () => onDurable(),
    onPressure: (paused) => {
      logger.debug({ paused }, paused ? "the sink is behind: pausing reads" : "resuming reads");
      throttle.set("pressure", paused);
    },
    onFailure: (err) => {
      if (err instanceof WriterFencedError) fence.fenced = err;
      fail(err);
    },
  });
  let batcher: Batcher | undefined;
  const clients: Client[] = [];
  let heartbeat: NodeJS.Timeout | undefined;
  try {
    const normal = await connect(config, "cdc-engine");
    clients.push(normal);
    const { tables, published } = await prepareSource(config, normal, logger);
    const captured = new Set(tables.map((t) => `${t.schema}.${t.table}`));
    await prewarmCatalog(normal, catalog, [...captured]);
    const versionNum = await serverVersionNum(normal);

    if (config.snapshotMode === "initial_only") {
      state = await loadState(sink, slot, logger);
      fenceRetries(sink, state);
      batcher = makeBatcher();
      await snapshotOnly(config, deps, normal, catalog, batcher, throttle, tables);
      return "stopped";
    }

    // The application name tells another deployment that meets this slot which sink streams from it.
    const replication = await connect(config, `cdc-engine replication ${sink.url}`.slice(0, 63), { replication: true });
    clients.push(replication);
    let slotRow = await readSlot(normal, slot);
    if (slotRow && (slotRow.plugin !== "pgoutput" || slotRow.database !== config.pg.database)) {
      throw new SourceSetupError([
        {
          name: "replication slot",
          ok: false,
          detail: `slot ${slot} exists but uses plugin ${slotRow.plugin ?? "none"} on database ${slotRow.database ?? "none"}, not pgoutput on ${config.pg.database}`,
          fix: `choose another PG_SLOT, or drop it: SELECT pg_drop_replication_slot('${slot}');`,
        },
      ]);
    }
    // Read without claiming anything: a slot this sink's engine did not create is never used or dropped.
    const seen = await EngineState.open(sink, slot);
    if (slotRow && !seen.ownsSlot(config.pg.database)) throw await foreignSlot(normal, config, sink, slotRow);
    if (slotRow?.active_pid) throw new SlotInUseError(slot, slotRow.active_pid);
    // The server's timeline now: recorded with a new slot, and compared with the recorded one when the slot is gone.
    const timeline = await serverTimeline(replication);
    if (!slotRow && config.snapshotMode === "never" && seen.hadSlot(config.pg.database)) throw lostSlot(config, sink, slotLossCause(slot, seen.slotOwner?.timeline, timeline));
    state = await loadState(sink, slot, logger);
    fenceRetries(sink, state);
    batcher = makeBatcher();

    const copiesOnNewSlot = config.snapshotMode === "initial" || config.snapshotMode === "incremental";
    const snapshotDue = copiesOnNewSlot && (!slotRow || !state.snapshot?.done);
    if (snapshotDue) {
      if (slotRow) {
        logger.warn(
          { slot },
          state.snapshot
            ? "the previous initial snapshot did not finish; dropping the slot and taking the snapshot again (safe to repeat)"
            : "the slot exists but this sink has no snapshot from it; dropping the slot and taking the initial snapshot",
        );
        await normal.query("SELECT pg_drop_replication_slot($1)", [slot]).catch((err: unknown) => {
          throw isSlotInUse(err) ? slotInUse(slot, err) : err;
        });
        slotRow = undefined;
      } else if (state.snapshot?.done) {
        const cause = slotLossCause(slot, state.slotOwner?.timeline, timeline);
        const cost = await snapshotCost(normal, tables, versionNum);
        logger.warn(
          { slot, tables: captured.size, failover: cause.failover, timeline, createdOnTimeline: state.slotOwner?.timeline, estimatedRows: cost.rows, estimatedBytes: cost.bytes },
          `${cause.text}. Changes since then cannot be streamed; taking a new initial snapshot: every row of the captured tables is copied again ` +
            `(r records after a b barrier per table), a new snapshot costs ${describeCost(cost)}`,
        );
      }
      if (state.snapshot && !state.snapshot.done && state.snapshot.files.length > 0) {
        logger.info({ files: state.snapshot.files.length }, "deleting the landing objects of the unfinished snapshot");
        for (const key of state.snapshot.files) await state.deleteObject(key);
      }
      // A full snapshot copies every table: incremental snapshots still queued are not needed.
      if (state.incremental) state.incremental.tables = [];
      // Recorded before the slot exists: a crash from here on is recognised as an unfinished
      // snapshot, and the slot, if it was created, as this sink's own.
      state.snapshot = { consistentPoint: "pending", done: false, files: [] };
      state.slotOwner = { slot, database: config.pg.database, status: "creating", since: new Date().toISOString(), timeline };
      await state.save([]);
      metrics.phase("snapshot");
      let created = await createSlot(replication, slot, { exportSnapshot: true, versionNum, watch: { client: normal, logger }, failover: config.pg.slotFailover });
      while (await commitAtConsistentPoint(normal, slot, config.pg.publication, created.consistentPoint, HEARTBEAT_PREFIX)) {
        logger.warn({ slot, consistentPoint: formatLsn(created.consistentPoint) }, "a transaction commits exactly at the slot's consistent point (it is not in the snapshot but would share its __lsn); creating the slot again");
        await normal.query("SELECT pg_drop_replication_slot($1)", [slot]);
        created = await createSlot(replication, slot, { exportSnapshot: true, versionNum, watch: { client: normal, logger }, failover: config.pg.slotFailover });
      }
      state.slotOwner.status = "created";
      const tsMs = Date.now();
      state.snapshot.consistentPoint = formatLsn(created.consistentPoint);
      // SNAPSHOT_MODE=incremental: tables with a primary key are copied in chunks while streaming
      // (queued below, resumable chunk by chunk); only those without one are copied here.
      const chunked = config.snapshotMode === "incremental" ? await keyedTables(normal, catalog, tables) : new Map<string, number>();
      const copied = tables.filter((t) => !chunked.has(`${t.schema}.${t.table}`));
      logger.info(
        { slot, consistentPoint: formatLsn(created.consistentPoint), tables: captured.size, ...(config.snapshotMode === "incremental" ? { chunked: [...chunked.keys()], copied: copied.map((t) => `${t.schema}.${t.table}`) } : {}) },
        config.snapshotMode === "incremental"
          ? copied.length > 0
            ? "created the replication slot; copying the tables without a primary key from its exported snapshot, then streaming while the others are copied in chunks (SNAPSHOT_MODE=incremental)"
            : "created the replication slot; streaming while the tables are copied in chunks (SNAPSHOT_MODE=incremental)"
          : "created the replication slot; taking the initial snapshot",
      );
      batcher.recordFilesInto = state.snapshot.files;
      const started = Date.now();
      // A shutdown interrupts the snapshot at once: it is not marked done, so the next start redoes it.
      const interrupted = new Promise<never>((_resolve, reject) => {
        const stop = () => reject(new Error("snapshot interrupted: the engine is stopping"));
        if (signal.aborted) stop();
        else signal.addEventListener("abort", stop, { once: true });
      });
      interrupted.catch(() => undefined);
      const { rows, relids } = copied.length === 0 ? { rows: 0, relids: new Map<string, number>() } : await Promise.race([
        interrupted,
        copySnapshot({
          config,
          snapshotName: created.snapshotName!,
          consistentPoint: created.consistentPoint,
          tsMs,
          tables: copied,
          catalog,
          batcher,
          throttle,
          logger,
          metrics: deps.metrics,
          signal: session.signal,
          parallelism: config.snapshotParallelism,
        }),
        failed,
      ]);
      await Promise.race([batcher.flushAll(), failed, interrupted]);
      batcher.recordFilesInto = undefined;
      state.snapshot.done = true;
      state.snapshot.files = [];
      for (const [label, oid] of chunked) relids.set(label, oid);
      markCovered(state.snapshot, [...captured], relids, state.snapshot.consistentPoint);
      // Each behind a re-snapshot barrier at its first chunk's low watermark, so that rows landed
      // before (from a slot that was lost, or an interrupted snapshot) are gone for readers.
      if (chunked.size > 0) queueChunkedSnapshots(state, [...chunked.keys()], "initial");
      await state.save([]);
      if (chunked.size > 0) {
        logger.info({ rows, ms: Date.now() - started, chunked: chunked.size }, "streaming now; the tables with a primary key are copied in chunks while streaming (SNAPSHOT_MODE=incremental)");
      } else {
        logger.info({ rows, ms: Date.now() - started, rowsPerSecond: Math.round((rows * 1000) / Math.max(1, Date.now() - started)) }, "initial snapshot done");
      }
    } else if (!slotRow) {
      // SNAPSHOT_MODE=never, first start (or a crash between the claim and the slot): claim, then create.
      state.slotOwner = { slot, database: config.pg.database, status: "creating", since: new Date().toISOString(), timeline };
      await state.save([]);
      const created = await createSlot(replication, slot, { exportSnapshot: false, versionNum, watch: { client: normal, logger }, failover: config.pg.slotFailover });
      state.snapshot = { consistentPoint: formatLsn(created.consistentPoint), done: true, files: [], tables: [...captured] };
      state.slotOwner.status = "created";
      await state.save([]);
      logger.info({ slot, consistentPoint: formatLsn(created.consistentPoint) }, "created the replication slot (SNAPSHOT_MODE=never: existing rows are not copied)");
    }

    if (state.snapshot?.done) {
      // A snapshot taken in this session already holds what a table given to the publication had.
      const readded = snapshotDue ? [] : published;
      await snapshotUncoveredTables(config, deps, { sink, normal, state, catalog, batcher, throttle, failed, versionNum, tables, published: readded, signal: session.signal });
    }

    // The slot exists now and is this sink's (states from before ownership was recorded get their
    // record here); written before streaming, while nothing else is being written.
    if (state.slotOwner?.slot !== slot || state.slotOwner.status !== "created") state.slotOwner = { slot, database: config.pg.database, status: "created", since: new Date().toISOString() };
    if (config.snapshotMode === "never") state.snapshot ??= { consistentPoint: slotRow?.confirmed_flush_lsn ?? "0/0", done: true, files: [], tables: [...captured] };
    await state.save([]);
    if (config.pg.slotFailover && (await enableFailover(replication, normal, slot, versionNum))) {
      logger.info({ slot }, "made the replication slot a failover slot (PG_SLOT_FAILOVER=true): standbys with sync_replication_slots = on keep a copy of it");
    }
    slotRow = await readSlot(normal, slot);
    const confirmedAtStart = slotRow?.confirmed_flush_lsn ? parseLsn(slotRow.confirmed_flush_lsn) : 0n;
    return await stream(config, deps, { normal, replication, batcher, state, catalog, captured, versionNum, wire, throttle, failed, confirmedAtStart, progress, setOnDurable: (f) => (onDurable = f), setHeartbeat: (t) => (heartbeat = t) });
  } catch (err) {
    if (signal.aborted && !isFatal(err)) return "stopped";
    throw err;
  } finally {
    endSession(new Error("the PostgreSQL session ended"));
    signal.removeEventListener("abort", onShutdown);
    if (heartbeat) clearInterval(heartbeat);
    await Promise.all(clients.map((c) => closeClient(c)));
    await batcher?.discard();
    await batcher?.close();
  }
}

/**
 * From now on every retried sink call first checks that this instance still holds the writer epoch
 * (the RetryingSink around object stores; the Kafka sink retries inside put() and takes the same check).
 */
function fenceRetries(sink: LandingSink, state: EngineState): void {
  const fenced = sink as LandingSink & { setFence?: (check: () => Promise<void>) => void };
  if (typeof fenced.setFence === "function") fenced.setFence(() => state.checkFence());
}

/** PG_SLOT exists, but this sink's state has no record of creating it: another deployment's slot. */
async function foreignSlot(normal: Client, config: EngineConfig, sink: LandingSink, slotRow: SlotRow): Promise<SourceSetupError> {
  const { slot, database } = config.pg;
  let holder = "";
  if (slotRow.active_pid) {
    const { rows } = await normal.query<{ application_name: string | null; client_addr: string | null }>("SELECT application_name, client_addr::text FROM pg_stat_activity WHERE pid = $1", [slotRow.active_pid]);
    const app = rows[0]?.application_name;
    // The replication connection's application_name names its sink, cut to PostgreSQL's 63 bytes.
    const cut = app !== null && app !== undefined && Buffer.byteLength(app) >= 63 ? "… (cut: application_name holds 63 bytes)" : "";
    const owner = app?.startsWith("cdc-engine replication ") ? ` — the engine streaming from it writes to ${app.slice("cdc-engine replication ".length)}${cut}` : app ? ` (application_name "${app}")` : "";
    holder = `; it is in use by PID ${slotRow.active_pid}${rows[0]?.client_addr ? ` from ${rows[0].client_addr}` : ""}${owner}`;
  } else {
    holder = `; it is not in use right now${slotRow.confirmed_flush_lsn ? ` (confirmed up to ${slotRow.confirmed_flush_lsn})` : ""}`;
  }
  return new SourceSetupError([
    {
      name: "replication slot",
      ok: false,
      detail:
        `slot ${slot} on database ${database} exists, but the sink ${sink.url} has no record of creating it (no ${EngineState.key(slot)} claiming it), ` +
        `so it belongs to another deployment or to an engine that wrote to another SINK_URL${holder}. The engine never uses or drops a slot it did not create`,
      fix: `give this deployment its own slot (PG_SLOT=<name unique to this deployment and sink>); only if nobody uses ${slot} any more, drop it: SELECT pg_drop_replication_slot('${slot}');`,
    },
  ]);
}

/** SNAPSHOT_MODE=never and the slot this sink's engine created is gone: the changes since are lost. */
function lostSlot(config: EngineConfig, sink: LandingSink, cause: { failover: boolean; text: string }): SourceSetupError {
  const { slot, database } = config.pg;
  return new SourceSetupError([
    {
      name: "replication slot",
      ok: false,
      detail:
        `slot ${slot} on database ${database}, which this engine created for ${sink.url}, no longer exists (${cause.failover ? cause.text : "dropped, or lost in a failover"}); ` +
        `the changes made since its last confirmed position are gone, and with SNAPSHOT_MODE=never the engine does not re-create it and go on as if nothing was missing`,
      fix:
        `set SNAPSHOT_MODE=initial once to re-create the slot and take a new snapshot (a re-snapshot barrier, so readers end up exact); ` +
        `or, to accept the gap, delete the state object ${sink.url}/${EngineState.key(slot)} and start again with SNAPSHOT_MODE=never`,
    },
  ]);
}

async function loadState(sink: LandingSink, slot: string, logger: Logger): Promise<EngineState> {
  const state = await EngineState.load(sink, slot);
  logger.info(
    { slot, sink: sink.url, writerEpoch: state.epoch, tables: Object.fromEntries([...state.highWater].map(([t, p]) => [t, `${formatLsn(p.lsn)}#${p.seq}`])) },
    state.highWater.size > 0 ? "resuming from the engine state in the sink" : "no engine state in the sink yet",
  );
  return state;
}

/**
 * Tables captured now that the landing zone holds no complete copy of (source/coverage.ts: newly
 * captured, come back under another OID, given to the publication again, or found by the stream)
 * get their own snapshot before streaming resumes: from a temporary slot's exported snapshot at its
 * consistent point P, as a barrier at (P, 0) and `r` records at (P, 1…); the stream then skips the
 * table's changes up to P (they are in the snapshot, and readers drop them behind the barrier).
 */
async function snapshotUncoveredTables(
  config: EngineConfig,
  deps: EngineDeps,
  ctx: {
    sink: LandingSink;
    normal: Client;
    state: EngineState;
    catalog: TypeCatalog;
    batcher: Batcher;
    throttle: ReadThrottle;
    failed: Promise<never>;
    versionNum: number;
    tables: { schema: string; table: string }[];
    published: { schema: string; table: string }[];
    signal: AbortSignal;
  },
): Promise<void> {
  const { logger, metrics, signal } = deps;
  const { state, batcher } = ctx;
  const snapshot = state.snapshot!;
  if (snapshot.adding) {
    logger.warn({ tables: snapshot.adding.tables }, "the snapshot of newly captured tables did not finish; taking it again");
    for (const key of snapshot.adding.files) await state.deleteObject(key);
    snapshot.adding = undefined;
  }
  const current = await relationOids(ctx.normal, ctx.tables);
  const confirmed = (await readSlot(ctx.normal, config.pg.slot))?.confirmed_flush_lsn;
  let due = tablesToSnapshot(snapshot, current, ctx.published.map((t) => `${t.schema}.${t.table}`), confirmed ? parseLsn(confirmed) : 0n);
  if (config.snapshotMode === "incremental") {
    // Those with a primary key are copied in chunks while streaming, behind a barrier; the
    // others from a temporary slot's exported snapshot, below, before streaming resumes.
    const keyed = due.filter((t) => current.has(t) && (ctx.catalog.primaryKey(current.get(t)!) ?? []).length > 0);
    if (keyed.length > 0) {
      const { rows } = await ctx.normal.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn");
      // Covered from now: the slot's replay of their older Relation messages changes nothing,
      // and what it lands of them before the first chunk's barrier readers drop.
      markCovered(snapshot, keyed, current, rows[0].lsn);
      queueChunkedSnapshots(state, keyed, "captured");
      logger.info({ tables: keyed }, "these captured tables are not covered by a snapshot (new, or come back); copying them in chunks while streaming (SNAPSHOT_MODE=incremental)");
      due = due.filter((t) => !keyed.includes(t));
    }
  }
  if (due.length === 0) {
    await state.save([]);
    return;
  }
  if (config.snapshotMode === "never") {
    logger.warn({ tables: due }, "SNAPSHOT_MODE=never: these captured tables are not covered by a snapshot (new, or come back); their existing rows are not copied");
    const { rows } = await ctx.normal.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn");
    markCovered(snapshot, due, current, rows[0].lsn);
    await state.save([]);
    return;
  }
  snapshot.adding = { tables: due, files: [] };
  await state.save([]);
  metrics.phase("snapshot");
  const temporary = await connect(config, "cdc-engine snapshot of uncovered tables", { replication: true });
  try {
    const name = `${config.pg.slot.slice(0, 40)}_add_${Date.now().toString(36)}`;
    const created = await createSlot(temporary, name, { exportSnapshot: true, temporary: true, versionNum: ctx.versionNum, watch: { client: ctx.normal, logger } });
    const point = created.consistentPoint;
    // Which of them exist and are captured as of P (read in the exported snapshot); the others
    // are recorded as having no table at P.
    const present = await capturedAt(config, created.snapshotName!, due, ctx.tables);
    const copy = ctx.tables.filter((t) => present.has(`${t.schema}.${t.table}`));
    logger.info({ tables: copy.map((t) => `${t.schema}.${t.table}`), absent: due.filter((t) => !present.has(t)), consistentPoint: formatLsn(point) }, "taking a snapshot of tables the landing zone holds no complete copy of");
    batcher.recordFilesInto = snapshot.adding.files;
    const interrupted = new Promise<never>((_resolve, reject) => {
      const stop = () => reject(new Error("snapshot interrupted: the engine is stopping"));
      if (signal.aborted) stop();
      else signal.addEventListener("abort", stop, { once: true });
    });
    interrupted.catch(() => undefined);
    const { relids } =
      copy.length === 0
        ? { relids: new Map<string, number>() }
        : await Promise.race([
            interrupted,
            ctx.failed,
            copySnapshot({ config, snapshotName: created.snapshotName!, consistentPoint: point, tsMs: Date.now(), tables: copy, catalog: ctx.catalog, batcher, throttle: ctx.throttle, logger, metrics, signal: ctx.signal, parallelism: config.snapshotParallelism }),
          ]);
    await Promise.race([batcher.flushAll(), ctx.failed, interrupted]);
    batcher.recordFilesInto = undefined;
    // As for the initial snapshot, a transaction committing exactly at P is not in the snapshot,
    // yet the stream would skip it (below). Only the owning session can read a temporary slot, and
    // a command there ends its exported snapshot: checked now, after the copy. On a hit the session
    // fails while `adding` is still recorded, so the next one deletes these objects and starts over.
    if (await commitAtConsistentPoint(ctx.normal, name, config.pg.publication, point, HEARTBEAT_PREFIX, temporary)) {
      throw new Error(`a transaction commits exactly at the consistent point ${formatLsn(point)} of the snapshot of ${due.join(", ")} (it is not in the snapshot but would share its __lsn); taking the snapshot again`);
    }
    // Their changes up to P are in the snapshot (or older than it): the stream skips them like
    // replayed events, and readers drop them anyway behind the barrier at (P, 0).
    for (const label of due) state.advance(label, { lsn: point, seq: Number.MAX_SAFE_INTEGER });
    markCovered(snapshot, due, relids, formatLsn(point));
    snapshot.adding = undefined;
    await state.save([]);
  } finally {
    await temporary.end().catch(() => undefined);
  }
}

/** Of `tables`, those with a primary key (which incremental snapshots chunk by), with their relation OIDs. */
async function keyedTables(client: Client, catalog: TypeCatalog, tables: { schema: string; table: string }[]): Promise<Map<string, number>> {
  const oids = await relationOids(client, tables);
  const unknown = [...oids.values()].filter((oid) => catalog.primaryKey(oid) === undefined);
  if (unknown.length > 0) await catalog.loadPrimaryKeys(client, unknown);
  return new Map([...oids].filter(([, oid]) => (catalog.primaryKey(oid) ?? []).length > 0));
}

/**
 * Queues tables for incremental snapshots behind a re-snapshot barrier (each at the end, once;
 * one queued already starts over), for the stream's IncrementalSnapshots to copy chunk by chunk.
 */
function queueChunkedSnapshots(state: EngineState, tables: string[], reason: string): void {
  state.incremental ??= { tables: [] };
  const since = new Date().toISOString();
  for (const table of tables) {
    const fresh = { table, chunks: 0, lastKey: null, rows: 0, barrier: true, reason, since };
    const queued = state.incremental.tables.findIndex((t) => t.table === table);
    if (queued >= 0) state.incremental.tables[queued] = fresh;
    else state.incremental.tables.push(fresh);
  }
}

/** The current relation OID of each table ("schema.table"); tables that do not exist are left out. */
async function relationOids(client: Client, tables: { schema: string; table: string }[]): Promise<Map<string, number>> {
  const { rows } = await client.query<{ name: string; oid: number | null }>(
    "SELECT t.schema || '.' || t.name AS name, to_regclass(format('%I.%I', t.schema, t.name))::oid::int AS oid FROM unnest($1::text[], $2::text[]) AS t(schema, name)",
    [tables.map((t) => t.schema), tables.map((t) => t.table)],
  );
  return new Map(rows.filter((r) => r.oid !== null).map((r) => [r.name, r.oid!]));
}

/** Of `names`, those captured (in `tables`) that exist and are published in the exported snapshot. */
async function capturedAt(config: EngineConfig, snapshotName: string, names: string[], tables: { schema: string; table: string }[]): Promise<Set<string>> {
  const wanted = tables.filter((t) => names.includes(`${t.schema}.${t.table}`));
  const client = await connect(config, "cdc-engine snapshot check");
  try {
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    await client.query(`SET TRANSACTION SNAPSHOT '${snapshotName.replace(/'/g, "''")}'`);
    const { rows } = await client.query<{ name: string }>(
      `SELECT t.schema || '.' || t.name AS name
         FROM unnest($1::text[], $2::text[]) AS t(schema, name)
        WHERE EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = t.schema AND c.relname = t.name AND c.relkind IN ('r', 'p'))
          AND EXISTS (SELECT 1 FROM pg_publication_tables p WHERE p.pubname = $3 AND p.schemaname = t.schema AND p.tablename = t.name)`,
      [wanted.map((t) => t.schema), wanted.map((t) => t.table), config.pg.publication],
    );
    await client.query("COMMIT");
    return new Set(rows.map((r) => r.name));
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function readSlot(client: Client, slot: string): Promise<SlotRow | undefined> {
  const { rows } = await client.query<SlotRow>(
    "SELECT slot_name, plugin, slot_type, database, active_pid, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
    [slot],
  );
  return rows[0];
}

/** Loads the types of every captured column and the primary keys, so the stream rarely has to wait for the catalog. */
async function prewarmCatalog(client: Client, catalog: TypeCatalog, tables: string[]): Promise<void> {
  if (tables.length === 0) return;
  const { rows } = await client.query<{ relid: number; types: number[] }>(
    `SELECT c.oid::int AS relid, array_agg(DISTINCT a.atttypid::int) AS types
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE n.nspname || '.' || c.relname = ANY($1::text[])
      GROUP BY c.oid`,
    [tables],
  );
  await catalog.loadTypes(client, catalog.missingTypes(rows.flatMap((r) => r.types)));
  await catalog.loadPrimaryKeys(client, rows.map((r) => r.relid));
}

/** SNAPSHOT_MODE=initial_only: one consistent copy of the tables, no slot left behind. */
async function snapshotOnly(
  config: EngineConfig,
  deps: EngineDeps,
  normal: Client,
  catalog: TypeCatalog,
  batcher: Batcher,
  throttle: ReadThrottle,
  tables: { schema: string; table: string }[],
): Promise<void> {
  const { logger, metrics, signal } = deps;
  metrics.phase("snapshot");
  await normal.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  const { rows } = await normal.query<{ name: string; lsn: string }>("SELECT pg_export_snapshot() AS name, pg_current_wal_lsn()::text AS lsn");
  const consistentPoint = parseLsn(rows[0].lsn);
  const started = Date.now();
  const result = await copySnapshot({ config, snapshotName: rows[0].name, consistentPoint, tsMs: started, tables, catalog, batcher, throttle, logger, metrics, signal, parallelism: config.snapshotParallelism });
  await batcher.flushAll();
  await normal.query("COMMIT");
  logger.info({ rows: result.rows, ms: Date.now() - started, lsn: formatLsn(consistentPoint) }, "snapshot done (SNAPSHOT_MODE=initial_only); exiting");
}

/** Waits until the slot is active for our replication connection, then checks the writer epoch once. */
async function confirmEpochWhileHoldingSlot(ctx: StreamContext, slot: string, stopped: () => boolean): Promise<void> {
  const pid = (ctx.replication as unknown as { processID: number | null }).processID;
  for (let i = 0; i < 600 && !stopped(); i++) {
    const { rows } = await ctx.normal.query<{ active_pid: number | null }>("SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", [slot]);
    if (rows[0]?.active_pid === pid) {
      await ctx.state.checkFence();
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface StreamContext {
  normal: Client;
  replication: Client;
  batcher: Batcher;
  state: EngineState;
  catalog: TypeCatalog;
  captured: Set<string>;
  versionNum: number;
  wire: WireFormat;
  throttle: ReadThrottle;
  failed: Promise<never>;
  confirmedAtStart: bigint;
  progress: SessionProgress;
  setOnDurable(f: () => void): void;
  setHeartbeat(timer: NodeJS.Timeout): void;
}

async function stream(config: EngineConfig, deps: EngineDeps, ctx: StreamContext): Promise<SessionEnd> {
  const { logger, metrics, signal } = deps;
  const { batcher, throttle, catalog } = ctx;
  let walEnd = 0n;
  /** Transactions decoded whose events are not all durable yet, oldest first. */
  let completed: { commit: bigint; end: bigint }[] = [];
  let stopping = false;
  let fail: (err: unknown) => void = () => undefined;
  const failedHere = new Promise<never>((_resolve, reject) => (fail = reject));
  failedHere.catch(() => undefined);
  // Incremental snapshots (source/incremental-snapshot.ts) run beside the stream, in its scope.
  const streamScope = new AbortController();
  let settleDurable = () => {};
  const incremental =
    ctx.versionNum >= INCREMENTAL_MIN_VERSION
      ? new IncrementalSnapshots({
          config,
          state: ctx.state,
          batcher,
          catalog,
          captured: config.tables.length > 0 ? ctx.captured : undefined,
          logger,
          metrics,
          signal: streamScope.signal,
          chunkSize: config.incrementalChunkSize,
          onPersisted: () => settleDurable(),
          fail: (err) => fail(err),
        })
      : undefined;
  failedHere.catch(() => streamScope.abort());
  ctx.failed.catch(() => streamScope.abort());

  // Set when the stream skipped changes (a missing publication on PostgreSQL 18+): from then on
  // nothing is confirmed, so the slot keeps them for the operator's decision.
  let skippedChanges = false;
  const confirm = (lsn: bigint) => {
    if (skippedChanges || lsn <= replication.confirmedLsn) return;
    replication.confirm(lsn);
    ctx.progress.confirmed = true;
    metrics.confirmedLsn(lsn);
    if (walEnd > 0n) metrics.replicationLagBytes(walEnd > lsn ? walEnd - lsn : 0n);
  };
  const wire = await chooseBinary(config, ctx.normal, catalog, ctx.captured, ctx.versionNum, ctx.wire);
  if (!wire.binary && config.pg.binary !== "off" && ctx.wire.loggedReason !== wire.reason) {
    ctx.wire.loggedReason = wire.reason;
    logger.info({ reason: wire.reason }, `streaming pgoutput in text, not binary (PG_BINARY=${config.pg.binary}): ${wire.reason}`);
  }
  const decoder = new PgOutputDecoder(
    batcher,
    ctx.state,
    catalog,
    // Without TABLE_INCLUDE the publication decides, including tables added to it later.
    config.tables.length > 0 ? ctx.captured : undefined,
    {
      onCommit(commit, end) {
        if (end > walEnd) walEnd = end;
        if (batcher.idle && incremental?.heldLsn === undefined) {
          completed = [];
          confirm(end);
        } else {
          completed.push({ commit, end });
          // Bounded bookkeeping for streams of tiny transactions: older entries only make confirmation finer.
          if (completed.length > 8192) completed.splice(0, 4096);
        }
      },
    },
    logger,
    // Tables that come back while streaming: an incremental snapshot (PostgreSQL 14+), else a new session's.
    config.snapshotMode === "never" ? "record" : incremental ? (table, oid, detail, lsn) => incremental.comeback(table, oid, detail, lsn) : "snapshot",
    wire.binary,
  );
  settleDurable = () => {
    incremental?.onDurable();
    let oldest = batcher.oldestPendingLsn();
    // A snapshot request is confirmed only once the state holding it is durable.
    const held = incremental?.heldLsn;
    if (held !== undefined && (oldest === undefined || held < oldest)) oldest = held;
    let i = 0;
    while (i < completed.length && (oldest === undefined || completed[i].commit < oldest)) i++;
    if (i === 0) return;
    const last = completed[i - 1];
    completed.splice(0, i);
    confirm(last.end);
  };
  ctx.setOnDurable(() => settleDurable());

  // Relation messages with types or keys the catalog does not know yet hold the stream until it does.
  // Held messages are copies (or gathered buffers of their own), each starting at its XLogData header.
  const backlog: Buffer[] = [];
  let blocked = false;
  /** The XLogData message at buf[start…]; `held` when buf is the message's own (a backlog entry). */
  const handle = (buf: Buffer, start: number, end: number, held = false) => {
    const off = start + XLOG_HEADER;
    const needs = decoder.catalogNeeds(buf, off);
    if (needs) {
      blocked = true;
      backlog.unshift(held ? buf : Buffer.from(buf.subarray(start, end)));
      throttle.set("catalog", true);
      void (async () => {
        await catalog.loadTypes(ctx.normal, needs.types);
        if (needs.details) await catalog.loadTableDetails(ctx.normal, needs.details.relid, needs.details.signature, needs.details.columns);
      })().then(() => {
        blocked = false;
        try {
          while (backlog.length > 0 && !blocked && !stopping) {
            const message = backlog.shift()!;
            handle(message, 0, message.length, true);
          }
        } catch (err) {
          stopping = true;
          fail(err);
          return;
        }
        if (!blocked) throttle.set("catalog", false);
      }, fail);
      return;
    }
    incremental?.observe(buf, off);
    decoder.decode(buf, off);
  };

  const replication = new ReplicationStream(ctx.replication, {
    onXLogData(buf, start, end) {
      if (stopping) return;
      if (blocked) {
        // A gathered message has a buffer of its own (its CopyData header first): kept, not copied.
        const message = buf.subarray(start, end);
        backlog.push(isGathered(message) ? message : Buffer.from(message));
        return;
      }
      try {
        handle(buf, start, end);
      } catch (err) {
        stopping = true;
        fail(err);
      }
    },
    onWalEnd(end) {
      walEnd = end;
      // Caught up: the server sends in order and a keepalive carries the position it has sent up
      // to (never inside a transaction), so once everything received is durable nothing before it
      // is left. Confirming it lets the slot advance while the captured tables are idle, even
      // without heartbeats.
      if (end > replication.confirmedLsn && batcher.idle && incremental?.heldLsn === undefined && !blocked && backlog.length === 0 && completed.length === 0 && decoder.betweenTransactions) confirm(end);
      metrics.replicationLagBytes(end > replication.confirmedLsn ? end - replication.confirmedLsn : 0n);
    },
  });
  // Large changes arrive gathered at their size; one too large for MAX_RECORD_BYTES is refused unread.
  const gate = gateLargeMessages(ctx.replication, batcher.maxRecordBytes);
  gate.skimmer = () => decoder.refusedChange();
  // CopyData straight to the stream, past pg-protocol's per-message objects and events.
  gate.copyData = (buf, start, end) => replication.receive(buf, start, end);
  throttle.add(connectionOf(ctx.replication).stream);

  const liveness = receiveDeadline(await walSenderTimeoutMs(ctx.normal));
  const streaming = replication.start(config.pg.slot, config.pg.publication, 0n, ctx.confirmedAtStart, ctx.versionNum, wire.binary, {
    ...liveness,
    onStall(err) {
      // Unready at once; the session then ends and the retry loop reconnects.
      metrics.phase("reconnecting", err.message);
      logger.warn({ silentMs: err.silentMs, deadlineMs: err.deadlineMs }, err.message);
      connectionOf(ctx.replication).stream.destroy(err);
      fail(err);
    },
  });
  streaming.catch(() => undefined);
  // PostgreSQL 18 decodes a change at whose position the publication does not exist by skipping
  // the publication, with a WARNING from pgoutput's LoadPublications ("skipped loading
  // publication …"), where older servers fail with ERROR publication "…" does not exist: the
  // change is then silently left out of the stream, so stop exactly as before, confirming nothing
  // from here on. (The routine identifies it whatever the server's lc_messages.)
  const onNotice = (notice: { message?: string; routine?: string }) => {
    if (skippedChanges || (notice.routine !== "LoadPublications" && !/skipped loading publication/.test(notice.message ?? ""))) return;
    skippedChanges = true;
    const err = new Error(`publication "${config.pg.publication}" does not exist at this point in the WAL (PostgreSQL: ${notice.message})`);
    fail(permanentSourceError(err, config) ?? err);
  };
  ctx.replication.on("notice", onNotice);
  metrics.confirmedLsn(ctx.confirmedAtStart);
  metrics.phase("streaming");
  logger.info({ slot: config.pg.slot, publication: config.pg.publication, confirmedFlushLsn: formatLsn(ctx.confirmedAtStart), tables: [...ctx.captured], format: wire.binary ? "binary" : "text" }, "streaming changes");
  // Ask for a keepalive at once, so the lag (and /readyz) is known without waiting for the server's timer.
  replication.requestReply();
  // PostgreSQL grants the slot to one walsender only. Once it is ours, no instance can claim a newer
  // writer epoch (they wait for the slot), so one that did before must be found now: stop at once.
  const holdsSlot = confirmEpochWhileHoldingSlot(ctx, config.pg.slot, () => stopping).catch(fail);
  void holdsSlot;

  if (config.heartbeatIntervalMs > 0) {
    ctx.setHeartbeat(
      setInterval(() => {
        ctx.normal.query("SELECT pg_logical_emit_message(true, $1, 'heartbeat')", [HEARTBEAT_PREFIX]).catch((err: unknown) => {
          // Without heartbeats an idle slot would retain WAL: reconnect rather than carry on.
          fail(new Error(`heartbeat failed: ${(err as Error).message}`, { cause: err }));
        });
      }, config.heartbeatIntervalMs),
    );
  }

  const snapshots = incremental?.run().catch(fail);
  const aborted = new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
  let comeback: ResnapshotNeeded | undefined;
  let undecodable: BinaryUnsupported | undefined;
  await Promise.race([
    aborted,
    ctx.failed,
    failedHere,
    streaming.then(() => {
      throw new Error("the server ended the replication stream");
    }),
  ]).catch((err: unknown) => {
    if (err instanceof BinaryUnsupported && config.pg.binary === "auto") {
      // Decoding stopped at the Relation message: what came before is made durable and confirmed,
      // then the next session streams in text from there on (the slot replays the rest).
      undecodable = err;
      ctx.wire.textSince = err.message;
      logger.info({ table: err.table, column: err.column, type: err.typeName }, `${err.message}; streaming in text from here on (PG_BINARY=auto)`);
      return;
    }
    if (err instanceof BinaryUnsupported) {
      throw new SourceSetupError([{ name: "binary mode", ok: false, detail: `PG_BINARY=on, but ${err.message}; nothing from this change on was written or confirmed`, fix: "set PG_BINARY=auto (text where needed) or off" }]);
    }
    if (!(err instanceof ResnapshotNeeded)) throw err;
    // Decoding stopped at the table's Relation message: what came before is made durable and
    // confirmed as usual, then the next session snapshots the table and streams on from there.
    comeback = err;
    logger.info({ table: err.table }, err.message);
  });

  ctx.replication.removeListener("notice", onNotice);
  // Shutting down: stop reading, make everything buffered durable, confirm it, close.
  metrics.phase("stopping");
  stopping = true;
  // A chunk not landed yet is read again by the next session (its progress is not durable).
  streamScope.abort();
  await snapshots;
  throttle.set("stopping", true);
  logger.info("stopping: flushing buffered changes");
  let deadline: NodeJS.Timeout | undefined;
  const flushed = await Promise.race([
    batcher.flushAll().then(() => true),
    ctx.failed,
    new Promise<false>((resolve) => (deadline = setTimeout(() => resolve(false), SHUTDOWN_FLUSH_MS))),
  ]).finally(() => clearTimeout(deadline));
  if (!flushed) {
    logger.error({ waitedMs: SHUTDOWN_FLUSH_MS }, "stopping without flushing: the sink did not accept the buffered changes in time; they were not confirmed and will be replayed on the next start");
  }
  replication.sendStatus();
  replication.stop();
  if (undecodable) {
    if (!flushed) throw new Error("could not flush before switching to text", { cause: undecodable });
    return "text";
  }
  if (comeback) {
    if (!flushed) throw new Error(`could not flush before the snapshot of ${comeback.table}`, { cause: comeback });
    // The stream found the table: persist that it needs a snapshot, then reconnect at once.
    await ctx.state.save([]);
    return "resnapshot";
  }
  logger.info({ confirmedLsn: formatLsn(replication.confirmedLsn) }, "stopped: everything confirmed is durable in the sink");
  return "stopped";
}
