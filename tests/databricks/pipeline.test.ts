/**
 * The Databricks component under Pulumi mocks (no Databricks workspace or cloud account exists
 * here; the mocks return what the real providers compute), one child process per configuration.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { ACCOUNT, CONTAINER_ID, KMS_KEY_ARN, LANDING, UC_MASTER } from "./harness/fixtures";
import { byType, one, Registered, REPO, reveal, Run, runDatabricks, withoutSecrets } from "./harness";
import { GOLD_TABLES, SILVER_MERGE_FILES, SILVER_SETUP_FILES, SILVER_VIEW_FILE } from "../../lakehouse/src/sql/render";

const T = {
  credential: "databricks:index/storageCredential:StorageCredential",
  location: "databricks:index/externalLocation:ExternalLocation",
  catalog: "databricks:index/catalog:Catalog",
  schema: "databricks:index/schema:Schema",
  volume: "databricks:index/volume:Volume",
  grant: "databricks:index/grant:Grant",
  notebook: "databricks:index/notebook:Notebook",
  file: "databricks:index/workspaceFile:WorkspaceFile",
  job: "databricks:index/job:Job",
  provider: "pulumi:providers:databricks",
  role: "aws:iam/role:Role",
  rolePolicy: "aws:iam/rolePolicy:RolePolicy",
  connector: "azure-native:databricks:AccessConnector",
  roleAssignment: "azure-native:authorization:RoleAssignment",
  bucketMember: "gcp:storage/bucketIAMMember:BucketIAMMember",
};

const TOKEN = "dapi0123456789abcdef-test-token";
const RUN_AS = "6f1c2a9e-4a51-4e0c-9a52-0d2a3c4b5e6f";
const DEMO_TABLES = [
  { name: "warehouse.stock_item", primaryKey: ["item_id"] },
  { name: "warehouse.stock_movement", primaryKey: ["movement_id"] },
  { name: "public.users", primaryKey: ["user_id"] },
  { name: "public.products", primaryKey: ["product_id"] },
  { name: "public.orders", primaryKey: ["order_id"] },
];

const md5 = (file: string) => createHash("md5").update(readFileSync(file)).digest("hex");
const params = (job: Registered): Record<string, string> =>
  Object.fromEntries((job.inputs.parameters as { name: string; default: string }[]).map((p) => [p.name, p.default]));
const tasks = (job: Registered): Record<string, any>[] => job.inputs.tasks;

/** The files the local lakehouse renders its SQL from (lakehouse/src/sql/render.ts). */
const LAKEHOUSE_SQL_FILES = [...SILVER_SETUP_FILES, ...SILVER_MERGE_FILES, SILVER_VIEW_FILE, ...GOLD_TABLES.map((g) => g.file)].map((f) => `sql/${f}`);

describe("databricks: DatabricksPipeline under Pulumi mocks", function () {
  this.timeout(120_000);
  let aws: Run, azure: Run, gcp: Run, local: Run;

  before(async () => {
    [aws, azure, gcp, local] = await Promise.all([
      runDatabricks({
        cloud: "aws",
        omitAccountId: true,
        token: TOKEN,
        databricks: {
          enabled: true,
          host: "https://dbc-1234abcd-5678.cloud.databricks.com",
          tables: DEMO_TABLES,
          notifications: { onFailure: ["data-oncall@example.com"] },
          runAs: RUN_AS,
          readers: ["analysts"],
        },
      }),
      runDatabricks({
        cloud: "azure",
        databricks: {
          enabled: true,
          catalog: { name: "lakehouse" },
          schemas: { bronze: "cdc_bronze", silver: "cdc_silver", gold: "cdc_gold" },
          tables: DEMO_TABLES,
          compute: { kind: "cluster" },
          schedule: { cron: "0 0/5 * * * ?", timezone: "Europe/Amsterdam" },
        },
      }),
      runDatabricks({
        cloud: "gcp",
        engineTables: ["public.users", "public.orders"],
        databricks: {
          enabled: true,
          catalog: { name: "main", create: false },
          primaryKeys: { "public.users": ["user_id"], "public.orders": ["order_id"] },
          schedule: { mode: "continuous", triggerInterval: "30 seconds" },
          compute: { workers: 2 },
        },
      }),
      runDatabricks({ cloud: "local", databricks: { enabled: true, tables: DEMO_TABLES } }),
    ]);
    for (const run of [aws, azure, gcp]) assert.equal(run.error, undefined, run.error);
  });

  describe("AWS", () => {
    it("creates an IAM role trusted by the Unity Catalog master role with the credential's external ID, and able to assume itself", () => {
      const credential = one(aws, T.credential);
      const role = one(aws, T.role);
      const roleArn = `arn:aws:iam::${ACCOUNT}:role/${role.inputs.name}`;
      assert.equal(credential.inputs.awsIamRole.roleArn, roleArn);
      const trust = JSON.parse(role.inputs.assumeRolePolicy);
      const externalId = `ext-${createHash("sha256").update(credential.name).digest("hex").slice(0, 12)}`;
      const master = trust.Statement.find((s: any) => s.Sid === "UnityCatalogMasterRole");
      assert.deepEqual(master.Principal, { AWS: [UC_MASTER] });
      assert.deepEqual(master.Condition, { StringEquals: { "sts:ExternalId": externalId } });
      const self = trust.Statement.find((s: any) => s.Sid === "ExplicitSelfRoleAssumption");
      assert.deepEqual(self.Principal, { AWS: `arn:aws:iam::${ACCOUNT}:root` });
      assert.deepEqual(self.Condition, { ArnLike: { "aws:PrincipalArn": roleArn }, StringEquals: { "sts:ExternalId": externalId } });
      assert.equal(trust.Statement.length, 2);
      assert.equal(role.inputs.tags.team, "data");
      // The account came from the one invoke the component may make.
      assert.deepEqual(aws.invokes.map((i) => i.token), ["aws:index/getCallerIdentity:getCallerIdentity"]);
    });

    it("allows the role on the landing prefix of the landing bucket only", () => {
      const policy = JSON.parse(one(aws, T.rolePolicy).inputs.policy);
      const bucketArn = `arn:aws:s3:::${LANDING.aws.bucket}`;
      const roleArn = `arn:aws:iam::${ACCOUNT}:role/${one(aws, T.role).inputs.name}`;
      const resources = policy.Statement.flatMap((s: any) => s.Resource);
      for (const r of resources) assert.ok([bucketArn, `${bucketArn}/${LANDING.aws.prefix}/*`, roleArn, KMS_KEY_ARN].includes(r), `unexpected resource ${r}`);
      // The bucket's KMS key (when it has one) for exactly the crypto actions S3 objects need.
      const kms = policy.Statement.find((s: any) => s.Sid === "LandingKmsKey");
      assert.deepEqual(kms.Resource, [KMS_KEY_ARN]);
      assert.ok(kms.Action.every((a: string) => a.startsWith("kms:")));
      assert.ok(!JSON.stringify(policy).includes('"*"'), "no wildcard resource or action");
      const list = policy.Statement.find((s: any) => s.Action.includes("s3:ListBucket"));
      assert.deepEqual(list.Condition, { StringLike: { "s3:prefix": [LANDING.aws.prefix, `${LANDING.aws.prefix}/*`] } });
      const objects = policy.Statement.find((s: any) => s.Action.includes("s3:GetObject"));
      assert.deepEqual(objects.Resource, [`${bucketArn}/${LANDING.aws.prefix}/*`]);
    });

    it("creates the external location for the landing URL with that credential, after the role's policy exists", () => {
      const location = one(aws, T.location);
      assert.equal(location.inputs.url, `s3://${LANDING.aws.bucket}/${LANDING.aws.prefix}`);
      assert.equal(location.inputs.credentialName, one(aws, T.credential).inputs.name);
      assert.ok(location.dependencies.includes(one(aws, T.rolePolicy).urn), "external location waits for the role policy");
      assert.ok(location.dependencies.includes(one(aws, T.role).urn), "external location waits for the role");
    });

    it("keeps the workspace token a secret everywhere", () => {
      const provider = one(aws, T.provider);
      assert.deepEqual(provider.inputs.token, { $secret: TOKEN });
      assert.equal(provider.inputs.host, "https://dbc-1234abcd-5678.cloud.databricks.com");
      const plain = JSON.stringify(aws.resources.map((r) => withoutSecrets(r.inputs)));
      assert.ok(!plain.includes(TOKEN), "the token appears outside a secret");
      // Every Databricks resource goes through that provider.
      for (const r of aws.resources.filter((x) => x.custom && x.type.startsWith("databricks:"))) {
        assert.match(r.provider, /pulumi:providers:databricks::databricks-workspace::/, `${r.type} ${r.name} does not use the configured provider`);
      }
    });

    it("grants the run-as service principal exactly what the job needs, and readers only silver and gold", () => {
      const grants = byType(aws, T.grant).map((g) => reveal(g.inputs));
      const of = (principal: string) => grants.filter((g) => g.principal === principal);
      const runAs = of(RUN_AS);
      assert.deepEqual(runAs.find((g) => g.externalLocation)?.privileges, ["READ_FILES"]);
      assert.deepEqual(runAs.find((g) => g.catalog)?.privileges, ["USE_CATALOG"]);
      assert.deepEqual(runAs.filter((g) => g.schema).map((g) => g.schema).sort(), ["cdc.bronze", "cdc.gold", "cdc.silver"]);
      assert.deepEqual(runAs.find((g) => g.volume)?.volume, "cdc.bronze.cdc_checkpoints");
      assert.ok(!runAs.some((g) => g.privileges.includes("ALL_PRIVILEGES")));
      const readers = of("analysts");
      assert.deepEqual(readers.filter((g) => g.schema).map((g) => [g.schema, g.privileges]).sort(), [
        ["cdc.gold", ["USE_SCHEMA", "SELECT"]],
        ["cdc.silver", ["USE_SCHEMA", "SELECT"]],
      ]);
      assert.ok(!readers.some((g) => g.externalLocation || g.volume || g.schema === "cdc.bronze"));
      assert.equal(one(aws, T.job).inputs.runAs.servicePrincipalName, RUN_AS);
    });

    it("runs bronze → silver → gold on the schedule, serverless, one run at a time, with retries on bronze", () => {
      const job = one(aws, T.job);
      const [bronze, silver, gold] = tasks(job);
      assert.deepEqual(tasks(job).map((t) => t.taskKey), ["bronze", "silver", "gold"]);
      assert.equal(bronze.dependsOns, undefined);
      assert.deepEqual(silver.dependsOns, [{ taskKey: "bronze" }]);
      assert.deepEqual(gold.dependsOns, [{ taskKey: "silver" }]);
      assert.ok(bronze.maxRetries >= 1, "bronze retries (a new column costs one restart)");
      assert.equal(job.inputs.maxConcurrentRuns, 1);
      assert.deepEqual(job.inputs.schedule, { quartzCronExpression: "0 0/15 * * * ?", timezoneId: "UTC", pauseStatus: "UNPAUSED" });
      assert.equal(job.inputs.continuous, undefined);
      assert.equal(job.inputs.jobClusters, undefined, "serverless: no job cluster");
      for (const t of tasks(job)) assert.equal(t.jobClusterKey, undefined);
      assert.deepEqual(job.inputs.emailNotifications.onFailures, ["data-oncall@example.com"]);
      assert.equal(job.inputs.tags.team, "data");
      assert.equal(aws.outputs.jobUrl, "https://dbc.example.cloud.databricks.com/#job/918273645");
    });

    it("passes tables, paths, catalog and schemas as job parameters (the notebooks hard-code none)", () => {
      const p = params(one(aws, T.job));
      assert.equal(p.landing_url, `s3://${LANDING.aws.bucket}/${LANDING.aws.prefix}`);
      assert.equal(p.catalog, "cdc");
      assert.deepEqual([p.bronze_schema, p.silver_schema, p.gold_schema], ["bronze", "silver", "gold"]);
      assert.equal(p.checkpoint_root, "/Volumes/cdc/bronze/cdc_checkpoints");
      assert.equal(p.workspace_dir, "/Workspace/Shared/postgres-cdc-multicloud/cdc-prod");
      assert.equal(p.trigger, "available_now");
      assert.deepEqual(JSON.parse(p.tables), DEMO_TABLES.map((t) => ({ name: t.name, primary_key: t.primaryKey })));
      for (const file of ["01_bronze_ingestion", "02_silver_merge", "03_gold_aggregation"]) {
        const source = readFileSync(path.join(REPO, "notebooks", `${file}.py`), "utf8");
        for (const value of [p.landing_url, p.checkpoint_root, "cdc.bronze", LANDING.aws.bucket]) assert.ok(!source.includes(value), `${file} hard-codes ${value}`);
        // Every parameter a notebook reads (its PARAMETERS list, read with dbutils.widgets) is one the job passes.
        const list = /^PARAMETERS = \[([\s\S]*?)\]/m.exec(source);
        assert.ok(list && source.includes("dbutils.widgets.get(name)"), `${file} reads its parameters from widgets`);
        const read = [...list[1].matchAll(/"([a-z_]+)"/g)].map((m) => m[1]);
        assert.ok(read.length >= 5);
        for (const name of read) assert.ok(name in p, `${file} reads job parameter ${name}, which the job does not pass`);
      }
    });

    it("creates the catalog, the three schemas and the checkpoint volume the checkpoint path points into", () => {
      assert.equal(one(aws, T.catalog).inputs.name, "cdc");
      assert.deepEqual(byType(aws, T.schema).map((s) => `${s.inputs.catalogName}.${s.inputs.name}`).sort(), ["cdc.bronze", "cdc.gold", "cdc.silver"]);
      const volume = one(aws, T.volume);
      assert.equal(volume.inputs.volumeType, "MANAGED");
      assert.equal(`/Volumes/${volume.inputs.catalogName}/${volume.inputs.schemaName}/${volume.inputs.name}`, params(one(aws, T.job)).checkpoint_root);
    });
  });

  describe("Azure", () => {
    it("creates an access connector with a system-assigned identity and Storage Blob Data Contributor on the landing container only", () => {
      const connector = one(azure, T.connector);
      assert.deepEqual(connector.inputs.identity, { type: "SystemAssigned" });
      assert.equal(connector.inputs.resourceGroupName, LANDING.azure.rg);
      assert.equal(connector.inputs.tags.team, "data");
      const assignment = one(azure, T.roleAssignment);
      assert.equal(assignment.inputs.scope, CONTAINER_ID, "scoped to the container, not the account or resource group");
      assert.equal(assignment.inputs.roleDefinitionId, "/subscriptions/00000000-0000-0000-0000-000000000001/providers/Microsoft.Authorization/roleDefinitions/ba92f5b4-2d11-453d-a403-e96b0029c9fe");
      assert.equal(assignment.inputs.principalType, "ServicePrincipal");
      assert.match(assignment.inputs.principalId, /^principal-/);
      assert.equal(azure.invokes.length, 0);
    });

    it("creates the storage credential from the connector and the external location for the abfss landing URL", () => {
      const credential = one(azure, T.credential);
      assert.match(credential.inputs.azureManagedIdentity.accessConnectorId, /\/providers\/Microsoft\.Databricks\/accessConnectors\/cdc-prod-uc-landing$/);
      assert.ok(credential.dependencies.includes(one(azure, T.roleAssignment).urn), "credential waits for the role assignment");
      const location = one(azure, T.location);
      assert.equal(location.inputs.url, `abfss://${LANDING.azure.container}@${LANDING.azure.account}.dfs.core.windows.net/${LANDING.azure.prefix}`);
      assert.equal(location.inputs.credentialName, credential.inputs.name);
      assert.ok(location.dependencies.includes(one(azure, T.roleAssignment).urn));
    });

    it("runs on a small job cluster with an Azure node type when compute is cluster, with the configured names and cron", () => {
      const job = one(azure, T.job);
      const cluster = job.inputs.jobClusters[0];
      assert.equal(cluster.newCluster.nodeTypeId, "Standard_D4ds_v5");
      assert.equal(cluster.newCluster.numWorkers, 0);
      assert.equal(cluster.newCluster.dataSecurityMode, "SINGLE_USER");
      assert.equal(cluster.newCluster.sparkConf["spark.databricks.cluster.profile"], "singleNode");
      for (const t of tasks(job)) assert.equal(t.jobClusterKey, cluster.jobClusterKey);
      assert.deepEqual(job.inputs.schedule, { quartzCronExpression: "0 0/5 * * * ?", timezoneId: "Europe/Amsterdam", pauseStatus: "UNPAUSED" });
      const p = params(job);
      assert.deepEqual([p.catalog, p.bronze_schema, p.silver_schema, p.gold_schema], ["lakehouse", "cdc_bronze", "cdc_silver", "cdc_gold"]);
      assert.equal(p.checkpoint_root, "/Volumes/lakehouse/cdc_bronze/cdc_checkpoints");
      assert.equal(one(azure, T.catalog).inputs.name, "lakehouse");
      assert.equal(byType(azure, T.provider).length, 0, "no host/token setting: the default provider (databricks:host/databricks:token) is used");
    });
  });

  describe("GCP", () => {
    it("grants the Databricks-managed service account of the storage credential on the landing bucket only", () => {
      const credential = one(gcp, T.credential);
      assert.deepEqual(credential.inputs.databricksGcpServiceAccount, {});
      const members = byType(gcp, T.bucketMember).map((m) => m.inputs);
      assert.deepEqual(members.map((m) => m.role).sort(), ["roles/storage.legacyBucketReader", "roles/storage.objectAdmin"]);
      for (const m of members) {
        assert.equal(m.bucket, LANDING.gcp.bucket);
        assert.match(m.member, /^serviceAccount:db-uc-storage-[0-9a-f]+@uc-useast1\.iam\.gserviceaccount\.com$/);
      }
      assert.ok(!gcp.resources.some((r) => /projectIam|ProjectIAM|organizations/i.test(r.type)), "no project-wide grant");
      const location = one(gcp, T.location);
      assert.equal(location.inputs.url, `gs://${LANDING.gcp.bucket}/${LANDING.gcp.prefix}`);
      for (const m of byType(gcp, T.bucketMember)) assert.ok(location.dependencies.includes(m.urn));
    });

    it("continuous mode: always-on tasks without dependencies or retry policies on a job cluster; an existing catalog is used, not created", () => {
      const job = one(gcp, T.job);
      assert.deepEqual(job.inputs.continuous, { pauseStatus: "UNPAUSED", taskRetryMode: "ON_FAILURE" });
      assert.equal(job.inputs.schedule, undefined);
      for (const t of tasks(job)) {
        assert.equal(t.dependsOns, undefined, "Databricks forbids task dependencies in continuous jobs");
        assert.equal(t.maxRetries, undefined, "Databricks forbids retry policies in continuous jobs");
      }
      assert.equal(job.inputs.jobClusters[0].newCluster.nodeTypeId, "n2-standard-4");
      assert.equal(job.inputs.jobClusters[0].newCluster.numWorkers, 2);
      const p = params(job);
      assert.equal(p.trigger, "processing_time");
      assert.equal(p.trigger_interval, "30 seconds");
      assert.equal(byType(gcp, T.catalog).length, 0);
      assert.equal(p.catalog, "main");
      // Tables come from the engine's list, keyed by the configured primary keys.
      assert.deepEqual(JSON.parse(p.tables), [
        { name: "public.users", primary_key: ["user_id"] },
        { name: "public.orders", primary_key: ["order_id"] },
      ]);
    });
  });

  describe("every cloud", () => {
    it("uploads the three notebooks from the repository, with their MD5 so unchanged ones are not re-uploaded", () => {
      for (const run of [aws, azure, gcp]) {
        const notebooks = byType(run, T.notebook);
        assert.deepEqual(notebooks.map((n) => path.basename(n.inputs.path)).sort(), ["01_bronze_ingestion", "02_silver_merge", "03_gold_aggregation"]);
        for (const nb of notebooks) {
          const repoFile = path.join(REPO, "notebooks", `${path.basename(nb.inputs.path)}.py`);
          assert.equal(path.resolve(REPO, nb.inputs.source), repoFile);
          assert.equal(nb.inputs.md5, md5(repoFile), `${nb.inputs.path}: content differs from the repository file`);
          assert.equal(nb.inputs.language, "PYTHON");
        }
        const job = one(run, T.job);
        const byKey = Object.fromEntries(tasks(job).map((t) => [t.taskKey, t.notebookTask.notebookPath]));
        assert.deepEqual(byKey, {
          bronze: `${run.outputs.workspaceFolder}/01_bronze_ingestion`,
          silver: `${run.outputs.workspaceFolder}/02_silver_merge`,
          gold: `${run.outputs.workspaceFolder}/03_gold_aggregation`,
        });
      }
    });

    it("uploads medallion_sql.py and exactly the SQL files the local lakehouse renders, next to the notebooks", () => {
      for (const run of [aws, azure, gcp]) {
        const files = byType(run, T.file);
        const relative = files.map((f) => path.posix.relative(run.outputs.workspaceFolder, f.inputs.path)).sort();
        assert.deepEqual(relative, ["medallion_sql.py", ...LAKEHOUSE_SQL_FILES].sort());
        for (const f of files) {
          const repoFile = path.join(REPO, "notebooks", path.posix.relative(run.outputs.workspaceFolder, f.inputs.path));
          assert.equal(path.resolve(REPO, f.inputs.source), repoFile);
          assert.equal(f.inputs.md5, md5(repoFile));
        }
        // The notebooks import from that folder.
        assert.equal(params(one(run, T.job)).workspace_dir, `/Workspace${run.outputs.workspaceFolder}`);
      }
    });

    it("refuses, with one message naming the setting, to enable Databricks on the local target", () => {
      assert.equal(local.created, false);
      assert.match(local.error ?? "", /databricks\.enabled is true, but the landing zone is on "local".*postgres-cdc-multicloud:cloud to aws, azure or gcp/);
      assert.equal(local.resources.length, 0);
    });
  });
});
