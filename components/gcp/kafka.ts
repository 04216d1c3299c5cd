/**
 * Google Cloud Managed Service for Apache Kafka for `sink: {kind: kafka}` without `bootstrap`: a
 * cluster of the smallest size in the engine's VPC subnetwork (the engine reaches it through its
 * direct VPC egress), and for the engine's service account only: the Managed Kafka client role
 * (to authenticate with application default credentials) and Kafka ACLs for describing, creating
 * and writing the topics with its prefix, reading back its state and schema topics, and
 * idempotent writes.
 */
import * as managedkafka from "@pulumi/gcp/managedkafka";
import * as projects from "@pulumi/gcp/projects";
import * as pulumi from "@pulumi/pulumi";
import { checkName, LIMITS } from "../limits";

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

  constructor(name: string, args: KafkaClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:KafkaCluster`, name, {}, opts);
    this.args = args;
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

  /** The engine's rights: connect (IAM), and Kafka ACLs on its own topics only. */
  grantEngine(name: string, serviceAccountEmail: pulumi.Input<string>): void {
    const a = this.args;
    new projects.IAMMember(`${name}-kafka-client`, { project: a.project, role: "roles/managedkafka.client", member: pulumi.interpolate`serviceAccount:${serviceAccountEmail}` }, { parent: this });
    const entries = (...operations: string[]) => operations.map((operation) => ({ principal: pulumi.interpolate`User:${serviceAccountEmail}`, permissionType: "ALLOW", operation, host: "*" }));
    const acl = (id: string, aclId: string, operations: string[]) =>
      new managedkafka.Acl(`${name}-acl-${id}`, { project: a.project, location: a.region, cluster: this.cluster.clusterId, aclId, aclEntries: entries(...operations) }, { parent: this });
    acl("topics", `topicPrefixed/${a.topicPrefix}.`, ["DESCRIBE", "CREATE", "WRITE"]);
    acl("state", `topic/${a.topicPrefix}._cdc_state`, ["READ"]);
    acl("schema", `topic/${a.topicPrefix}._schema`, ["READ"]);
    acl("cluster", "cluster", ["IDEMPOTENT_WRITE"]);
  }
}
