/**
 * `doctor` on each managed-service profile. The suite has no RDS, Azure or Cloud SQL, so each is
 * IMITATED on the suite's PostgreSQL (started with wal_level=replica): a role per platform carries
 * the settings the service adds (custom placeholder settings such as rds.logical_replication, set
 * with ALTER ROLE … SET), Aurora's aurora_version() is a stand-in function on that role's
 * search_path. Detection reads exactly these, so the fixes doctor prints are the platform's own.
 */
import assert from "node:assert/strict";
import type { Client } from "pg";
import { Client as PgClient } from "pg";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { loadConfig } from "../../container/src/config";
import { inspectSource, type SourceCheck } from "../../container/src/source/setup";

const IMITATIONS: Record<string, string[]> = {
  rds_imitation: [`ALTER ROLE rds_imitation SET "rds.logical_replication" = '0'`],
  aurora_imitation: [
    `ALTER ROLE aurora_imitation SET "rds.logical_replication" = '0'`,
    "CREATE SCHEMA aurora_stand_in",
    "CREATE FUNCTION aurora_stand_in.aurora_version() RETURNS text LANGUAGE sql AS $$ SELECT 'imitation' $$",
    "GRANT USAGE ON SCHEMA aurora_stand_in TO aurora_imitation",
    "ALTER ROLE aurora_imitation SET search_path = aurora_stand_in, public",
  ],
  azure_imitation: [`ALTER ROLE azure_imitation SET "azure.replication_support" = 'replica'`],
  cloudsql_imitation: [`ALTER ROLE cloudsql_imitation SET "cloudsql.logical_decoding" = 'off'`],
  plain_user: [],
};

describe("engine: doctor on managed-service profiles (imitated)", function () {
  this.timeout(60_000);
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres({ settings: { wal_level: "replica" } });
    await pg.query("CREATE TABLE public.m (id int PRIMARY KEY)");
    for (const [role, statements] of Object.entries(IMITATIONS)) {
      await pg.query(`CREATE ROLE ${role} LOGIN PASSWORD 'imitation'; GRANT SELECT ON public.m TO ${role}`);
      for (const sql of statements) await pg.query(sql);
    }
  });
  after(async () => {
    await pg?.stop();
  });

  async function doctorAs(role: string): Promise<SourceCheck[]> {
    const config = loadConfig({ ...pg.env, PG_USER: role, PG_PASSWORD: "imitation", SINK_URL: "file:///tmp/unused", TABLE_INCLUDE: "public.m" });
    const client: Client = new PgClient({ host: pg.host, port: pg.port, user: role, password: "imitation", database: pg.database });
    await client.connect();
    try {
      return await inspectSource(config, client);
    } finally {
      await client.end();
    }
  }
  const named = (checks: SourceCheck[], name: string) => checks.find((c) => c.name === name)!;

  const expectations: [string, RegExp, RegExp, RegExp][] = [
    ["rds_imitation", /^Amazon RDS for PostgreSQL \(recognised by setting rds\.logical_replication\)$/, /^in the DB parameter group of the instance, set rds\.logical_replication = 1 .*ParameterName=rds\.logical_replication,ParameterValue=1.*then reboot the instance$/, /^GRANT rds_replication TO rds_imitation;/],
    ["aurora_imitation", /^Amazon Aurora PostgreSQL \(recognised by function aurora_version\(\), setting rds\.logical_replication\)$/, /^in the DB cluster parameter group of the cluster, set rds\.logical_replication = 1 .*modify-db-cluster-parameter-group.*then reboot the writer instance$/, /^GRANT rds_replication TO aurora_imitation;/],
    ["azure_imitation", /^Azure Database for PostgreSQL flexible server \(recognised by setting azure\.replication_support\)$/, /^set the server parameter wal_level = logical \(portal: Server parameters, or az postgres flexible-server parameter set .*--name wal_level --value logical\), then restart the server$/, /^ALTER ROLE azure_imitation WITH REPLICATION; \(as the server admin/],
    ["cloudsql_imitation", /^Google Cloud SQL for PostgreSQL \(recognised by setting cloudsql\.logical_decoding\)$/, /^set the database flag cloudsql\.logical_decoding=on .*gcloud sql instances patch <instance> --database-flags=cloudsql\.logical_decoding=on.*cloudsql\.enable_pglogical is not needed$/, /^ALTER ROLE cloudsql_imitation WITH REPLICATION; \(as a cloudsqlsuperuser/],
    ["plain_user", /^PostgreSQL \(self-managed\)$/, /^ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL/, /^ALTER ROLE plain_user WITH REPLICATION;$/],
  ];
  for (const [role, platform, walFix, grantFix] of expectations) {
    it(`recognises ${role.replace(/_imitation$/, " (imitated)")} and prints that platform's fixes`, async () => {
      const checks = await doctorAs(role);
      const p = named(checks, "platform");
      assert.equal(p.ok, true);
      assert.match(p.detail, platform);
      const wal = named(checks, "wal_level");
      assert.equal(wal.ok, false);
      assert.match(wal.fix!, walFix);
      if (role !== "plain_user") assert.ok(!wal.fix!.includes("ALTER SYSTEM"), "managed services are changed in their console or CLI, not ALTER SYSTEM");
      const grant = named(checks, "replication privilege");
      assert.equal(grant.ok, false);
      assert.match(grant.fix!, grantFix);
    });
  }

  it("warns about HEARTBEAT_INTERVAL_MS=0", async () => {
    const client = await pg.connect();
    try {
      const checks = await inspectSource(loadConfig({ ...pg.env, SINK_URL: "file:///tmp/unused", TABLE_INCLUDE: "public.m", HEARTBEAT_INTERVAL_MS: "0" }), client);
      const h = named(checks, "heartbeat");
      assert.equal(h.ok, true);
      assert.equal(h.warning, true);
      assert.match(h.detail, /^HEARTBEAT_INTERVAL_MS=0: no heartbeat is written\. While the captured tables are idle the slot advances only from the server's keepalives/);
      const without = await inspectSource(loadConfig({ ...pg.env, SINK_URL: "file:///tmp/unused", TABLE_INCLUDE: "public.m" }), client);
      assert.equal(without.find((c) => c.name === "heartbeat"), undefined);
    } finally {
      await client.end();
    }
  });
});
