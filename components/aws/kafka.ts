/**
 * Amazon MSK Serverless for `sink: {kind: kafka}` without `bootstrap`: a cluster with IAM access
 * control only, in the engine's subnets, reachable from the engine's security group on the IAM
 * port (9098), and a task-role policy that lets the engine connect, describe/create/write its own
 * topics (`<prefix>.*`, or in the pipelines form its own tables' and the shared state and schema topics) idempotently and read back only its state and schema topics — nothing else.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { checkName, LIMITS } from "../limits";
import { storePassword } from "./secret";

const T = "postgres-cdc-multicloud:aws";

export interface KafkaClusterArgs {
  /** Base of resource names (components/naming.ts). */
  baseName: string;
  region: string;
  accountId: pulumi.Input<string>;
  vpcId: pulumi.Input<string>;
  subnetIds: pulumi.Input<pulumi.Input<string>[]>;
  topicPrefix: string;
  tags: Record<string, string>;
}

export class KafkaCluster extends pulumi.ComponentResource {
  readonly arn: pulumi.Output<string>;
  /** Bootstrap brokers for SASL/IAM (host:port,…). */
  readonly bootstrap: pulumi.Output<string>;
  readonly securityGroupId: pulumi.Output<string>;
  private readonly topicArn: (topic: string) => pulumi.Output<string>;
  private readonly topicPrefix: string;

  constructor(name: string, args: KafkaClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:KafkaCluster`, name, {}, opts);
    this.topicPrefix = args.topicPrefix;
    const securityGroup = new aws.ec2.SecurityGroup(`${name}-sg`, {
      name: checkName("securityGroup", `${args.baseName}-kafka`),
      description: "MSK Serverless for the CDC engine: IAM listener from the engine only",
      vpcId: args.vpcId,
      tags: args.tags,
    }, { parent: this });
    const clusterName = checkName("mskCluster", `${args.baseName}-kafka`);
    const cluster = new aws.msk.ServerlessCluster(`${name}-cluster`, {
      clusterName,
      clientAuthentication: { sasl: { iam: { enabled: true } } },
      vpcConfigs: [{ subnetIds: args.subnetIds, securityGroupIds: [securityGroup.id] }],
      tags: args.tags,
    }, { parent: this });
    this.topicArn = (t: string) => pulumi.interpolate`arn:aws:kafka:${args.region}:${args.accountId}:topic/${clusterName}/${cluster.clusterUuid}/${t}`;
    this.arn = cluster.arn;
    this.bootstrap = cluster.bootstrapBrokersSaslIam;
    this.securityGroupId = securityGroup.id;
    this.registerOutputs({ arn: this.arn, bootstrap: this.bootstrap, securityGroupId: this.securityGroupId });
  }

  /**
   * The IAM policy an engine's role needs: without `tables` every topic of the prefix (the
   * single-pipeline form: the engine owns them all); with them (one pipeline of several) only
   * those tables' topics plus the state and schema topics every engine shares (keyed by slot and
   * by table, so the engines never write the same key).
   */
  enginePolicy(tables?: string[]): pulumi.Output<string> {
    const p = this.topicPrefix;
    const shared = [this.topicArn(`${p}._cdc_state`), this.topicArn(`${p}._schema`)];
    const writable = tables ? [...tables.map((t) => this.topicArn(`${p}.${t}`)), ...shared] : this.topicArn(`${p}.*`);
    return pulumi.jsonStringify({
      Version: "2012-10-17",
      Statement: [
        { Sid: "ConnectToCluster", Effect: "Allow", Action: ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster", "kafka-cluster:WriteDataIdempotently"], Resource: this.arn },
        { Sid: "WriteOwnTopics", Effect: "Allow", Action: ["kafka-cluster:DescribeTopic", "kafka-cluster:CreateTopic", "kafka-cluster:WriteData"], Resource: writable },
        { Sid: "ReadOwnState", Effect: "Allow", Action: ["kafka-cluster:ReadData"], Resource: shared },
      ],
    });
  }
}

/** Lets the engine's security group reach the cluster's IAM listener (and only that). */
export function connectEngineToKafka(name: string, engineSecurityGroupId: pulumi.Input<string>, kafka: KafkaCluster, parent: pulumi.Resource): void {
  const port = LIMITS.aws.mskIamPort;
  new aws.vpc.SecurityGroupIngressRule(`${name}-kafka-from-engine`, {
    securityGroupId: kafka.securityGroupId,
    referencedSecurityGroupId: engineSecurityGroupId,
    ipProtocol: "tcp",
    fromPort: port,
    toPort: port,
    description: "CDC engine to MSK (SASL/IAM)",
  }, { parent });
  new aws.vpc.SecurityGroupEgressRule(`${name}-engine-to-kafka`, {
    securityGroupId: engineSecurityGroupId,
    referencedSecurityGroupId: kafka.securityGroupId,
    ipProtocol: "tcp",
    fromPort: port,
    toPort: port,
    description: "CDC engine to MSK (SASL/IAM)",
  }, { parent });
}

export interface KafkaPasswordSecretArgs {
  baseName: string;
  /** The SCRAM user's password (a Pulumi secret). */
  password: pulumi.Input<string>;
  /** Days Secrets Manager keeps a deleted secret (0 deletes at once). */
  recoveryWindowInDays: number;
  tags: Record<string, string>;
}

/**
 * The SCRAM password of an existing cluster (`sink.auth` scram-sha-256/512) in Secrets Manager, as
 * the PostgreSQL password is kept: the task gets it as KAFKA_PASSWORD through the execution role
 * (ECS `secrets`), never as a plain value in the task definition. A deleted secret keeps its name
 * for the recovery window, so the name ends in a suffix that is new after each destroy.
 */
export class KafkaPasswordSecret extends pulumi.ComponentResource {
  readonly arn: pulumi.Output<string>;
  /** The current version's id: new whenever the password changes (the task definition carries it, so the task rolls). */
  readonly versionId: pulumi.Output<string>;

  constructor(name: string, args: KafkaPasswordSecretArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:KafkaPasswordSecret`, name, {}, opts);
    const stored = storePassword(name, { ...args, key: "kafka-password", description: "SCRAM password of the CDC engine's Kafka user" }, this);
    this.arn = stored.arn;
    this.versionId = stored.versionId;
    this.registerOutputs({ arn: this.arn, versionId: this.versionId });
  }
}
