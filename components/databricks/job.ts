/**
 * The one Databricks job: bronze → silver → gold notebook tasks sharing job parameters (nothing in
 * the notebooks is hard-coded), one run at a time, on serverless compute or a small job cluster.
 *
 * Scheduled mode: the three tasks run in order on the cron schedule; bronze and silver are
 * `availableNow` streams that drain what landed and stop; bronze retries, so a new column (which
 * Auto Loader reports by stopping the stream once) costs one restart.
 * Continuous mode: Databricks allows neither task dependencies nor retry policies in continuous
 * jobs, so the three tasks are always-on and run side by side — bronze and silver as
 * processing-time streams, gold recomputing on an interval — and Databricks restarts failed
 * tasks with exponential backoff.
 */
import * as pulumi from "@pulumi/pulumi";
import * as databricks from "@pulumi/databricks";
import { DatabricksCloud, DatabricksSettings, DEFAULT_NODE_TYPES, MedallionTable } from "./settings";
import { Layer } from "./workspace";

export interface MedallionJobArgs {
  cloud: DatabricksCloud;
  settings: DatabricksSettings;
  tables: MedallionTable[];
  notebookPaths: Record<Layer, pulumi.Input<string>>;
  /** Workspace folder holding medallion_sql.py and sql/ (the notebooks import from it). */
  workspaceFolder: string;
  landingUrl: pulumi.Input<string>;
  catalogName: pulumi.Input<string>;
  bronzeSchema: pulumi.Input<string>;
  silverSchema: pulumi.Input<string>;
  goldSchema: pulumi.Input<string>;
  checkpointRoot: pulumi.Input<string>;
  namePrefix: string;
  tags: Record<string, string>;
  /**
   * The engine publishes to Kafka: bronze reads `<topicPrefix>.<schema>.<table>` from these brokers
   * (with settings.kafkaOptions), and landing_url becomes `<checkpoint_root>/kafka-landing`, where
   * bronze mirrors the `_schema` topic's manifests for silver (notebooks/01_bronze_ingestion.py).
   */
  kafka?: { bootstrap: pulumi.Input<string>; topicPrefix: string };
}

/** Task keys, in dependency order. */
export const TASK_KEYS: Record<Layer, string> = { bronze: "bronze", silver: "silver", gold: "gold" };

const JOB_CLUSTER_KEY = "medallion";

/** Job tags: Databricks allows at most 25, with keys/values of at most 127/255 characters. */
function jobTags(tags: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(tags)
      .slice(0, 25)
      .map(([k, v]) => [k.slice(0, 127), v.slice(0, 255)]),
  );
}

/** The job parameters every notebook reads with dbutils.widgets (see notebooks/0*.py). */
export function jobParameters(args: MedallionJobArgs): pulumi.Output<{ name: string; default: string }[]> {
  const { settings } = args;
  const continuous = settings.schedule.mode === "continuous";
  return pulumi
    .all([args.landingUrl, args.catalogName, args.bronzeSchema, args.silverSchema, args.goldSchema, args.checkpointRoot, args.kafka?.bootstrap])
    .apply(([landingUrl, catalog, bronze, silver, gold, checkpointRoot, kafkaBootstrap]) => [
      { name: "landing_url", default: args.kafka ? `${checkpointRoot.replace(/\/+$/, "")}/kafka-landing` : landingUrl.replace(/\/+$/, "") },
      // Empty without a Kafka sink: bronze then reads landing objects with Auto Loader.
      { name: "kafka_bootstrap", default: args.kafka ? kafkaBootstrap! : "" },
      { name: "kafka_topic_prefix", default: args.kafka?.topicPrefix ?? "" },
      { name: "kafka_options", default: args.kafka ? JSON.stringify(settings.kafkaOptions) : "" },
      { name: "catalog", default: catalog },
      { name: "bronze_schema", default: bronze },
      { name: "silver_schema", default: silver },
      { name: "gold_schema", default: gold },
      { name: "checkpoint_root", default: checkpointRoot },
      { name: "tables", default: JSON.stringify(args.tables.map((t) => ({ name: t.name, primary_key: t.primaryKey }))) },
      { name: "workspace_dir", default: `/Workspace${args.workspaceFolder}` },
      { name: "trigger", default: continuous ? "processing_time" : "available_now" },
      { name: "trigger_interval", default: settings.schedule.triggerInterval },
      { name: "gold_interval_minutes", default: String(settings.schedule.goldIntervalMinutes) },
    ]);
}

export class MedallionJob extends pulumi.ComponentResource {
  readonly jobId: pulumi.Output<string>;
  readonly jobUrl: pulumi.Output<string>;

  constructor(name: string, args: MedallionJobArgs, opts?: pulumi.ComponentResourceOptions) {
    super("postgres-cdc-multicloud:databricks:MedallionJob", name, {}, opts);
    const { settings } = args;
    const continuous = settings.schedule.mode === "continuous";
    const onCluster = settings.compute.kind === "cluster";
    const pauseStatus = settings.schedule.paused ? "PAUSED" : "UNPAUSED";

    const task = (layer: Layer, upstream: Layer | undefined, retries: number): databricks.types.input.JobTask => ({
      taskKey: TASK_KEYS[layer],
      description: `postgres-cdc-multicloud ${layer} layer`,
      notebookTask: { notebookPath: args.notebookPaths[layer], source: "WORKSPACE" },
      ...(onCluster ? { jobClusterKey: JOB_CLUSTER_KEY } : {}),
      ...(continuous
        ? {}
        : {
            ...(upstream ? { dependsOns: [{ taskKey: TASK_KEYS[upstream] }] } : {}),
            maxRetries: retries,
            minRetryIntervalMillis: 30_000,
            retryOnTimeout: false,
          }),
    });

    const singleNode = settings.compute.workers === 0;
    const job = new databricks.Job(
      name,
      {
        name: `${args.namePrefix} CDC medallion (bronze → silver → gold)`,
        description:
          "postgres-cdc-multicloud: Auto Loader ingests the CDC landing files into bronze, silver MERGEs them into one row per key, gold aggregates. Managed by Pulumi.",
        maxConcurrentRuns: 1,
        // A run that is still going when the next one is due makes the next one redundant.
        queue: { enabled: false },
        tags: jobTags(args.tags),
        parameters: jobParameters(args),
        tasks: [task("bronze", undefined, settings.bronzeMaxRetries), task("silver", "bronze", 1), task("gold", "silver", 1)],
        ...(continuous
          ? { continuous: { pauseStatus, taskRetryMode: "ON_FAILURE" } }
          : { schedule: { quartzCronExpression: settings.schedule.cron, timezoneId: settings.schedule.timezone, pauseStatus } }),
        ...(onCluster
          ? {
              jobClusters: [
                {
                  jobClusterKey: JOB_CLUSTER_KEY,
                  newCluster: {
                    sparkVersion: settings.compute.sparkVersion,
                    nodeTypeId: settings.compute.nodeType ?? DEFAULT_NODE_TYPES[args.cloud],
                    numWorkers: settings.compute.workers,
                    // Unity Catalog needs a dedicated (single-user) or standard access mode; the job's run-as identity is the user.
                    dataSecurityMode: "SINGLE_USER",
                    customTags: { ...args.tags, ...(singleNode ? { ResourceClass: "SingleNode" } : {}) },
                    ...(singleNode
                      ? { sparkConf: { "spark.databricks.cluster.profile": "singleNode", "spark.master": "local[*]" } }
                      : {}),
                  },
                },
              ],
            }
          : {}),
        ...(settings.notifications.onFailure.length > 0
          ? { emailNotifications: { onFailures: settings.notifications.onFailure, noAlertForSkippedRuns: true } }
          : {}),
        ...(settings.runAs ? { runAs: { servicePrincipalName: settings.runAs } } : {}),
      },
      { parent: this },
    );

    this.jobId = job.id;
    this.jobUrl = job.url;
    this.registerOutputs({ jobId: this.jobId, jobUrl: this.jobUrl });
  }
}
