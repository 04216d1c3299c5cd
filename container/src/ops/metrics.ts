/**
 * What the streaming path reports. The Prometheus implementation lives beside this file; tests may
 * pass their own. Table labels are "schema.table".
 */
export interface EngineMetrics {
  /** Events (and their NDJSON bytes, before compression) made durable in the sink for a table. */
  eventsWritten(table: string, events: number, bytes: number): void;
  /** One landing object made durable. */
  fileWritten(table: string, bytes: number): void;
  /** A flush round finished; `at` is epoch ms. */
  flushed(at: number): void;
  /** The LSN confirmed to PostgreSQL (as a bigint). */
  confirmedLsn(lsn: bigint): void;
  /** Server WAL end minus confirmed LSN, in bytes, from the latest keepalive/XLogData. */
  replicationLagBytes(bytes: bigint): void;
  /** The engine's phase, for /readyz: ready once streaming and the lag is known; `reason` says why it left streaming (shown by /readyz). */
  /**
   * Progress of a table's snapshot: rows read so far (handed to the batcher, not yet all durable),
   * and block ranges done of how many. Optional: embedders' metrics may leave it out.
   */
  snapshotProgress?(table: string, rows: number, rangesDone: number, ranges: number): void;
  /** Progress of a table's incremental snapshot: chunks and rows durable so far (optional, like snapshotProgress). */
  incrementalProgress?(table: string, chunks: number, rows: number): void;
  /** The catalog's estimate (pg_class.reltuples) of the rows a table's snapshot copies, when it has one. */
  snapshotEstimate?(table: string, rows: number): void;
  phase(phase: "starting" | "snapshot" | "streaming" | "waiting_for_slot" | "reconnecting" | "stopping", reason?: string): void;
}
