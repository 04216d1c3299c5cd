/**
 * Amazon MSK Serverless for `sink: {kind: kafka}` without `bootstrap`: a cluster with IAM access
 * control only, in the engine's subnets, reachable from the engine's security group on the IAM
 * port (9098), and a task-role policy that lets the engine connect, describe/create/write its own
 * topics (`<prefix>.*`) idempotently and read back only its state and schema topics — nothing else.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { checkName, LIMITS } from "../limits";

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
  /** The IAM policy statements the engine's role needs (its topics only). */
  readonly enginePolicy: pulumi.Output<string>;

  constructor(name: string, args: KafkaClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:KafkaCluster`, name, {}, opts);
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
    const topic = (t: string) => pulumi.interpolate`arn:aws:kafka:${args.region}:${args.accountId}:topic/${clusterName}/${cluster.clusterUuid}/${t}`;
    this.enginePolicy = pulumi.jsonStringify({
      Version: "2012-10-17",
      Statement: [
        { Sid: "ConnectToCluster", Effect: "Allow", Action: ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster", "kafka-cluster:WriteDataIdempotently"], Resource: cluster.arn },
        { Sid: "WriteOwnTopics", Effect: "Allow", Action: ["kafka-cluster:DescribeTopic", "kafka-cluster:CreateTopic", "kafka-cluster:WriteData"], Resource: topic(`${args.topicPrefix}.*`) },
        { Sid: "ReadOwnState", Effect: "Allow", Action: ["kafka-cluster:ReadData"], Resource: [topic(`${args.topicPrefix}._cdc_state`), topic(`${args.topicPrefix}._schema`)] },
      ],
    });
    this.arn = cluster.arn;
    this.bootstrap = cluster.bootstrapBrokersSaslIam;
    this.securityGroupId = securityGroup.id;
    this.registerOutputs({ arn: this.arn, bootstrap: this.bootstrap, securityGroupId: this.securityGroupId });
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
