/**
 * `doctor` on each managed-service profile. The suite has no RDS, Azure or Cloud SQL, so each is
 * IMITATED on the suite's PostgreSQL (started with wal_level=replica): a role per platform carries
 * the settings the service adds (custom placeholder settings such as rds.logical_replication, set
 * with ALTER ROLE … SET), Aurora's aurora_version() is a stand-in function on that role's
 * search_path. Detection reads exactly these, so the fixes doctor prints are the platform's own.
 * The keyless-login checks likewise read imitations: RDS's rds_iam role, a stand-in of Azure's
 * pgaadauth_list_principals(), Cloud SQL's cloudsqliamserviceaccount role and its
 * cloudsql.iam_authentication flag; the sessions log in with a password (no cloud issues tokens here).
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

  /** doctor's checks as `role`; with `auth` the config says PG_AUTH=auth (the session itself logs in with the imitation's password: no cloud issues tokens here). */
  async function doctorAs(role: string, auth?: string): Promise<SourceCheck[]> {
    const login = auth ? { PG_AUTH: auth, PG_SSLMODE: "require" } : { PG_PASSWORD: "imitation" };
    const server: Record<string, string | undefined> = { ...pg.env, PG_PASSWORD: undefined };
    const config = loadConfig({ ...server, PG_USER: role, ...login, SINK_URL: "file:///tmp/unused", TABLE_INCLUDE: "public.m" });
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

  describe("the database side of a keyless login (PG_AUTH), each platform's roles and settings imitated", () => {
    const role = async (name: string, ...statements: string[]) => {
      await pg.query(`CREATE ROLE "${name}" LOGIN PASSWORD 'imitation'; GRANT SELECT ON public.m TO "${name}"`);
      for (const sql of statements) await pg.query(sql);
    };
    const login = async (name: string, auth: string) => named(await doctorAs(name, auth), "database login");

    it("aws-iam: FAIL without rds_iam on the server, FAIL with GRANT rds_iam while the user is not a member, ok once it is (RDS's rds_iam role imitated)", async () => {
      await role("iam_user");
      const noRole = await login("iam_user", "aws-iam");
      assert.equal(noRole.ok, false);
      assert.match(noRole.detail, /^PG_AUTH=aws-iam, but this server has no rds_iam role/);
      await pg.query("CREATE ROLE rds_iam NOLOGIN");
      const missing = await login("iam_user", "aws-iam");
      assert.equal(missing.ok, false);
      assert.equal(missing.detail, "PG_AUTH=aws-iam: iam_user is not a member of rds_iam, so RDS rejects its IAM authentication tokens");
      assert.match(missing.fix!, /^GRANT rds_iam TO iam_user;/);
      await pg.query("GRANT rds_iam TO iam_user");
      const granted = await login("iam_user", "aws-iam");
      assert.equal(granted.ok, true, granted.detail);
      assert.equal(granted.warning, undefined);
      assert.equal(named(await doctorAs("plain_user"), "database login"), undefined, "no such line with PG_AUTH=password");
    });

    it("azure-entra: ok when pgaadauth_list_principals lists the role, FAIL with the create_principal fix when not, a warning where nothing shows it (pgaadauth's function imitated)", async () => {
      await pg.query(`CREATE SCHEMA pgaadauth_stand_in;
        CREATE FUNCTION pgaadauth_stand_in.pgaadauth_list_principals(is_admin boolean)
          RETURNS TABLE (rolname name, principaltype text, objectid text, tenantid text, ismfa int, isadmin int)
          LANGUAGE sql AS $$ SELECT 'id-cdc-dev-123abc-engine'::name, 'service', '00000000-0000-0000-0000-0000000000e1', 't', 0, 0 $$;
        GRANT USAGE ON SCHEMA pgaadauth_stand_in TO PUBLIC`);
      const onAzure = `SET search_path = pgaadauth_stand_in, public`;
      await role("id-cdc-dev-123abc-engine", `ALTER ROLE "id-cdc-dev-123abc-engine" ${onAzure}`);
      await role("id-other-engine", `ALTER ROLE "id-other-engine" ${onAzure}`);
      await role("entra_elsewhere");
      const listed = await login("id-cdc-dev-123abc-engine", "azure-entra");
      assert.deepEqual([listed.ok, listed.warning], [true, undefined]);
      assert.equal(listed.detail, "PG_AUTH=azure-entra: id-cdc-dev-123abc-engine is a Microsoft Entra principal on this server");
      const unlisted = await login("id-other-engine", "azure-entra");
      assert.equal(unlisted.ok, false);
      assert.match(unlisted.fix!, /^as the server's Entra admin, in the postgres database: SELECT \* FROM pgaadauth_create_principal\('id-other-engine', false, false\);/);
      const unknown = await login("entra_elsewhere", "azure-entra");
      assert.deepEqual([unknown.ok, unknown.warning], [true, true]);
      assert.match(unknown.fix!, /pgaadauth_create_principal\('entra_elsewhere', false, false\)/);
    });

    it("gcp-iam: the Cloud SQL IAM user and the cloudsql.iam_authentication flag (Cloud SQL's cloudsqliamserviceaccount role and flag imitated)", async () => {
      await pg.query("CREATE ROLE cloudsqliamserviceaccount NOLOGIN");
      const sa = "cdc-engine@acme-data-123.iam";
      const flagOn = (name: string) => `ALTER ROLE "${name}" SET "cloudsql.iam_authentication" = 'on'`;
      await role(sa, flagOn(sa), `GRANT cloudsqliamserviceaccount TO "${sa}"`);
      await role("flag-off@acme-data-123.iam", `ALTER ROLE "flag-off@acme-data-123.iam" SET "cloudsql.iam_authentication" = 'off'`);
      await role("builtin-user@acme-data-123.iam", flagOn("builtin-user@acme-data-123.iam"));
      await role("full@acme-data-123.iam.gserviceaccount.com");
      const ok = await login(sa, "gcp-iam");
      assert.deepEqual([ok.ok, ok.warning, ok.detail], [true, undefined, `PG_AUTH=gcp-iam: ${sa} is a Cloud SQL IAM service account user, cloudsql.iam_authentication=on`]);
      const off = await login("flag-off@acme-data-123.iam", "gcp-iam");
      assert.equal(off.ok, false);
      assert.match(off.fix!, /^set the database flag cloudsql\.iam_authentication=on/);
      const notIam = await login("builtin-user@acme-data-123.iam", "gcp-iam");
      assert.equal(notIam.ok, false);
      assert.match(notIam.fix!, /^gcloud sql users create builtin-user@acme-data-123\.iam --instance=<instance> --type=cloud_iam_service_account/);
      const email = await login("full@acme-data-123.iam.gserviceaccount.com", "gcp-iam");
      assert.equal(email.ok, false);
      assert.equal(email.fix, "set PG_USER=full@acme-data-123.iam");
    });
  });

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
