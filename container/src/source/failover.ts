/**
 * A replication slot that is gone: dropped, or lost because the server failed over to a standby
 * that had no synchronized copy of it. The server's timeline tells the two apart: a promoted
 * standby (like a point-in-time restore) starts a new, higher timeline, so a timeline above the one
 * recorded when the slot was created means the server was promoted since. Either way a new
 * snapshot is the way on; what it costs is estimated from pg_class.
 */
import type { Client } from "pg";
import type { TableName } from "../config";

/** The server's current timeline, from IDENTIFY_SYSTEM on a replication connection (no privilege beyond REPLICATION needed). */
export async function serverTimeline(replication: Client): Promise<number> {
  const { rows } = await replication.query("IDENTIFY_SYSTEM");
  return Number(rows[0].timeline);
}

/** What copying the tables again costs, from the planner's statistics (pg_class.reltuples, relation sizes; partitions' leaves). */
export async function snapshotCost(client: Client, tables: TableName[], versionNum: number): Promise<{ rows: number; bytes: number }> {
  if (tables.length === 0) return { rows: 0, bytes: 0 };
  // A partitioned table's rows are in its leaves (pg_partition_tree, 12+, which lists nothing for a plain table).
  const leaves = versionNum >= 120000
    ? "SELECT coalesce(p.relid, w.relid) AS relid FROM wanted w LEFT JOIN LATERAL pg_partition_tree(w.relid) p ON true WHERE w.relid IS NOT NULL AND (p.relid IS NULL OR p.isleaf)"
    : "SELECT relid FROM wanted WHERE relid IS NOT NULL";
  const { rows } = await client.query<{ rows: string | null; bytes: string | null }>(
    `WITH wanted AS (SELECT to_regclass(format('%I.%I', t.schema, t.name)) AS relid FROM unnest($1::text[], $2::text[]) AS t(schema, name)),
          leaves AS (${leaves})
     SELECT sum(greatest(c.reltuples, 0))::bigint AS rows, sum(pg_relation_size(c.oid))::bigint AS bytes
       FROM pg_class c WHERE c.oid IN (SELECT relid FROM leaves)`,
    [tables.map((t) => t.schema), tables.map((t) => t.table)],
  );
  return { rows: Number(rows[0]?.rows ?? 0), bytes: Number(rows[0]?.bytes ?? 0) };
}

const MB = 1024 * 1024;

/** "about N rows / X MB (estimate from pg_class)". */
export function describeCost(cost: { rows: number; bytes: number }): string {
  return `about ${cost.rows.toLocaleString("en-US")} rows / ${(cost.bytes / MB).toFixed(cost.bytes < 10 * MB ? 1 : 0)} MB (estimate from pg_class)`;
}

/**
 * Why the slot this engine created is gone, as far as the server shows it: a failover when the
 * server is now on a later timeline than the slot was created on (recorded in the state object
 * since this field exists), else dropped or lost in a failover alike.
 */
export function slotLossCause(slot: string, createdOnTimeline: number | undefined, currentTimeline: number): { failover: boolean; text: string } {
  if (createdOnTimeline !== undefined && currentTimeline > createdOnTimeline) {
    return {
      failover: true,
      text:
        `the slot ${slot} did not survive a failover (not synchronized): this server is on timeline ${currentTimeline}, the slot was created on timeline ${createdOnTimeline}, ` +
        "so the server was promoted from a standby that had no synchronized copy of the slot (failover slots need PostgreSQL 17+, PG_SLOT_FAILOVER=true, " +
        "synchronized_standby_slots on the primary and sync_replication_slots = on on the standby; see cdc-engine doctor)",
    };
  }
  // Without a record (a state from before it was kept), a timeline above 1 still says the server was promoted or restored once.
  const unrecorded = createdOnTimeline === undefined && currentTimeline > 1
    ? `; this server is on timeline ${currentTimeline}, so it was promoted or restored at some point, but the timeline the slot was created on is not recorded`
    : "";
  return {
    failover: false,
    text:
      `the replication slot ${slot} is gone: it was dropped outside the engine, or the server failed over to a standby that had no synchronized copy of it ` +
      `(failover slots need PostgreSQL 17+, PG_SLOT_FAILOVER=true and sync_replication_slots = on on the standby; see cdc-engine doctor)${unrecorded}`,
  };
}
