/**
 * Google Cloud Managed Service for Apache Kafka for `sink: {kind: kafka}` without `bootstrap`: a
 * cluster of the smallest size in the engine's VPC subnetwork (the engine reaches it through its
 * direct VPC egress), and for the engine's service account only: the Managed Kafka client role
 * (to authenticate with application default credentials) and Kafka ACLs for describing, creating
 * and writing the topics with its prefix (in the pipelines form: each engine its own tables' topics), reading back its state and schema topics, and
 * idempotent writes.
 */
import * as managedkafka from "@pulumi/gcp/managedkafka";
import * as projects from "@pulumi/gcp/projects";
import * as secretmanager from "@pulumi/gcp/secretmanager";
import * as pulumi from "@pulumi/pulumi";
import { checkName, LIMITS } from "../limits";
import { storePassword } from "./secret";

const T = "postgres-cdc-multicloud:gcp";

export interface KafkaClusterArgs {
  baseName: string;
  project: string;
  region: string;
  /** The subnetwork (name or projects/…/subnetworks/… path) the cluster's endpoints are placed in. */
  subnetwork: string;
  topicPrefix: string;
  labels: Record<string, string>;
  /** Waits for the project's APIs. */
  apis: pulumi.Resource;
}

export class KafkaCluster extends pulumi.ComponentResource {
  readonly clusterId: string;
  readonly bootstrap: pulumi.Output<string>;
  private readonly cluster: managedkafka.Cluster;
  private readonly args: KafkaClusterArgs;
  private readonly name: string;

  constructor(name: string, args: KafkaClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:KafkaCluster`, name, {}, opts);
    this.args = args;
    this.name = name;
    const api = new projects.Service(`${name}-api`, { project: args.project, service: "managedkafka.googleapis.com", disableOnDestroy: false, disableDependentServices: false }, { parent: this, dependsOn: [args.apis] });
    this.clusterId = checkName("gcpKafkaCluster", `${args.baseName}-kafka`);
    const subnet = args.subnetwork.startsWith("projects/") ? args.subnetwork : `projects/${args.project}/regions/${args.region}/subnetworks/${args.subnetwork}`;
    const size = LIMITS.gcp.managedKafka;
    this.cluster = new managedkafka.Cluster(`${name}-cluster`, {
      clusterId: this.clusterId,
      project: args.project,
      location: args.region,
      capacityConfig: { vcpuCount: String(size.minVcpu), memoryBytes: String(size.minVcpu * size.memoryGiBPerVcpu.min * 1024 ** 3) },
      gcpConfig: { accessConfig: { networkConfigs: [{ subnet }] } },
      labels: args.labels,
    }, { parent: this, dependsOn: [api] });
    // The bootstrap address Managed Kafka documents for a cluster (SASL/OAUTHBEARER on 9092).
    this.bootstrap = pulumi.interpolate`bootstrap.${this.cluster.clusterId}.${args.region}.managedkafka.${args.project}.cloud.goog:9092`;
    this.registerOutputs({ bootstrap: this.bootstrap });
  }

  /**
   * The engines' rights: connect (IAM), and Kafka ACLs on their own topics only. One engine without
   * `tables` (the single-pipeline form) owns every topic of the prefix; engines with `tables` (one
   * per pipeline) each get literal ACLs on their tables' topics, and share one ACL per state, schema
   * topic and the cluster (an ACL id is unique in a cluster; its entries name every engine).
   */
  grantEngines(engines: { name: string; serviceAccountEmail: pulumi.Input<string>; tables?: string[] }[]): void {
    const a = this.args;
    const entries = (emails: pulumi.Input<string>[], ...operations: string[]) =>
      emails.flatMap((email) => operations.map((operation) => ({ principal: pulumi.interpolate`User:${email}`, permissionType: "ALLOW", operation, host: "*" })));
    const acl = (name: string, aclId: string, aclEntries: ReturnType<typeof entries>) =>
      new managedkafka.Acl(name, { project: a.project, location: a.region, cluster: this.cluster.clusterId, aclId, aclEntries }, { parent: this });
    for (const e of engines) {
      new projects.IAMMember(`${e.name}-kafka-client`, { project: a.project, role: "roles/managedkafka.client", member: pulumi.interpolate`serviceAccount:${e.serviceAccountEmail}` }, { parent: this });
    }
    const [only] = engines;
    if (engines.length === 1 && !only.tables) {
      acl(`${only.name}-acl-topics`, `topicPrefixed/${a.topicPrefix}.`, entries([only.serviceAccountEmail], "DESCRIBE", "CREATE", "WRITE"));
      acl(`${only.name}-acl-state`, `topic/${a.topicPrefix}._cdc_state`, entries([only.serviceAccountEmail], "READ"));
      acl(`${only.name}-acl-schema`, `topic/${a.topicPrefix}._schema`, entries([only.serviceAccountEmail], "READ"));
      acl(`${only.name}-acl-cluster`, "cluster", entries([only.serviceAccountEmail], "IDEMPOTENT_WRITE"));
      return;
    }
    for (const e of engines) {
      for (const table of e.tables ?? []) acl(`${e.name}-acl-${table}`, `topic/${a.topicPrefix}.${table}`, entries([e.serviceAccountEmail], "DESCRIBE", "CREATE", "WRITE"));
    }
    const all = engines.map((e) => e.serviceAccountEmail);
    acl(`${this.name}-acl-state`, `topic/${a.topicPrefix}._cdc_state`, entries(all, "DESCRIBE", "CREATE", "WRITE", "READ"));
    acl(`${this.name}-acl-schema`, `topic/${a.topicPrefix}._schema`, entries(all, "DESCRIBE", "CREATE", "WRITE", "READ"));
    acl(`${this.name}-acl-cluster`, "cluster", entries(all, "IDEMPOTENT_WRITE"));
  }
}

export interface KafkaPasswordSecretArgs {
  baseName: string;
  project: string;
  /** The SCRAM user's password (a Pulumi secret). */
  password: pulumi.Input<string>;
  deletionProtection: boolean;
  labels: Record<string, string>;
  apis: pulumi.Resource;
}

/**
 * The SCRAM password of an existing cluster (`sink.auth` scram-sha-256/512) in Secret Manager, as
 * the PostgreSQL password is kept: Cloud Run resolves it into KAFKA_PASSWORD at start (a secret
 * reference pinned to this version), never as a plain value; each engine's service account may
 * access this secret only (grantReader).
 */
export class KafkaPasswordSecret extends pulumi.ComponentResource {
  readonly secretId: pulumi.Output<string>;
  /** The current version number: the services pin it, so a new password rolls them. */
  readonly version: pulumi.Output<string>;
  private readonly args: KafkaPasswordSecretArgs;

  constructor(name: string, args: KafkaPasswordSecretArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:KafkaPasswordSecret`, name, {}, opts);
    this.args = args;
    const { secret, version } = storePassword(name, { ...args, key: "kafka-password" }, this);
    this.secretId = secret.secretId;
    this.version = version.version;
    this.registerOutputs({ secretId: this.secretId, version: this.version });
  }

  /** Secret Manager access to this secret for one engine's service account (`member`: serviceAccount:…). */
  grantReader(name: string, member: pulumi.Input<string>, parent: pulumi.Resource): secretmanager.SecretIamMember {
    return new secretmanager.SecretIamMember(name, { project: this.args.project, secretId: this.secretId, role: "roles/secretmanager.secretAccessor", member }, { parent, dependsOn: [this.args.apis] });
  }
}
