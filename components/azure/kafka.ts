/**
 * Azure Event Hubs for `sink: {kind: kafka}` without `bootstrap`: a namespace (Standard by default:
 * the smallest tier with the Kafka endpoint and log compaction) that accepts Microsoft Entra tokens
 * only (no SAS keys), TLS 1.2, and one event hub per topic the engines publish to — a table's topic
 * (time-based retention) and the shared `_cdc_state` and `_schema` topics (compacted, one
 * partition, as the engine would create them on Kafka).
 *
 * The event hubs are made here rather than by the engine: Event Hubs sets partitions, retention and
 * compaction through Azure Resource Manager, not through Kafka's CreateTopics with topic configs,
 * and making them here lets the engine's identity hold data-plane roles only. Each engine is granted
 * per event hub (the narrowest scope Azure RBAC offers for Event Hubs data): "Azure Event Hubs Data
 * Sender" on its own tables' event hubs and the state and schema event hubs, and "Azure Event Hubs
 * Data Receiver" on the state and schema event hubs only (it reads them back at start).
 */
import * as eventhub from "@pulumi/azure-native/eventhub";
import * as pulumi from "@pulumi/pulumi";
import { kafkaTopics } from "../kafka";
import { checkName, LIMITS } from "../limits";
import { eventHubsNamespaceName } from "../naming";
import { ROLES } from "./roles";
import { storeVaultPassword } from "./secret";

const T = "postgres-cdc-multicloud:azure";

export interface EventHubsKafkaArgs {
  /** Base of resource names (components/naming.ts). */
  baseName: string;
  /** Makes the global namespace name unique per subscription and stack. */
  uniqueness: pulumi.Input<string>;
  resourceGroupName: pulumi.Input<string>;
  location: string;
  tags: Record<string, string>;
  topicPrefix: string;
  /** Every table the stack captures (`schema.table`), over all its engines: one event hub each. */
  tables: string[];
  tier: "Standard" | "Premium";
  /** Throughput units (Standard) or processing units (Premium). */
  capacity: number;
  /** Partitions of each table's event hub (fixed at creation on Standard). */
  partitions: number;
  /** How long a table's event hub keeps events. */
  retentionHours: number;
}

/** One role an engine's identity needs, on one scope (EngineService creates the assignment with its other grants). */
export interface KafkaGrant {
  name: string;
  role: string;
  scope: pulumi.Input<string>;
  description: string;
}

export class EventHubsKafka extends pulumi.ComponentResource {
  readonly namespaceName: pulumi.Output<string>;
  readonly namespaceId: pulumi.Output<string>;
  /** `<namespace>.servicebus.windows.net:9093`, the namespace's Kafka endpoint. */
  readonly bootstrap: pulumi.Output<string>;
  private readonly hubs = new Map<string, eventhub.EventHub>();
  private readonly topicPrefix: string;

  constructor(name: string, args: EventHubsKafkaArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:EventHubsKafka`, name, {}, opts);
    this.topicPrefix = args.topicPrefix;
    const eh = LIMITS.azure.eventHubs;
    const namespace = new eventhub.Namespace(`${name}-namespace`, {
      namespaceName: pulumi.output(args.uniqueness).apply((u) => checkName("eventHubsNamespace", eventHubsNamespaceName(args.baseName, u))),
      resourceGroupName: args.resourceGroupName,
      location: args.location,
      sku: { name: args.tier, tier: args.tier, capacity: args.capacity },
      kafkaEnabled: true,
      // Entra only: no shared access keys exist that could leak.
      disableLocalAuth: true,
      minimumTlsVersion: "1.2",
      tags: args.tags,
    }, { parent: this });
    const hub = (topic: string, retentionDescription: eventhub.EventHubArgs["retentionDescription"], partitionCount: number) => {
      const created = new eventhub.EventHub(`${name}-${topic}`, {
        eventHubName: checkName("eventHub", topic),
        namespaceName: namespace.name,
        resourceGroupName: args.resourceGroupName,
        partitionCount,
        retentionDescription,
      }, { parent: this });
      this.hubs.set(topic, created);
    };
    const topics = kafkaTopics(args.topicPrefix, args.tables);
    for (const topic of topics.data) hub(topic, { cleanupPolicy: "Delete", retentionTimeInHours: args.retentionHours }, args.partitions);
    for (const topic of [topics.state, topics.schema]) hub(topic, { cleanupPolicy: "Compact", tombstoneRetentionTimeInHours: eh.tombstoneRetentionHours }, 1);
    this.namespaceName = namespace.name;
    this.namespaceId = namespace.id;
    this.bootstrap = pulumi.interpolate`${namespace.name}.servicebus.windows.net:${eh.kafkaPort}`;
    this.registerOutputs({ namespaceName: this.namespaceName, namespaceId: this.namespaceId, bootstrap: this.bootstrap });
  }

  /**
   * What one engine's identity is granted: Data Sender on each of `tables`' event hubs and on the
   * state and schema event hubs, Data Receiver on those two only.
   */
  engineGrants(tables: string[]): KafkaGrant[] {
    const topics = kafkaTopics(this.topicPrefix, tables);
    const scope = (topic: string) => {
      const found = this.hubs.get(topic);
      if (!found) throw new Error(`no event hub ${topic} was created for the Kafka sink`);
      return found.id;
    };
    return [
      ...[...topics.data, topics.state, topics.schema].map((topic) => ({ name: `kafka-send-${topic}`, role: ROLES.eventHubsDataSender, scope: scope(topic), description: `CDC engine publishes to ${topic} only` })),
      ...[topics.state, topics.schema].map((topic) => ({ name: `kafka-read-${topic}`, role: ROLES.eventHubsDataReceiver, scope: scope(topic), description: `CDC engine reads back ${topic}` })),
    ];
  }
}

export interface KafkaPasswordSecretArgs {
  /** The stack's Key Vault (the PostgreSQL password's, RBAC authorization). */
  vaultName: pulumi.Input<string>;
  resourceGroupName: pulumi.Input<string>;
  /** The SCRAM user's password (a Pulumi secret). */
  password: pulumi.Input<string>;
  tags: Record<string, string>;
}

/**
 * The SCRAM password of an existing cluster (`sink.auth` scram-sha-256/512) in the stack's Key
 * Vault beside the PostgreSQL password: the Container App resolves it with the engine's identity
 * (Key Vault Secrets User on this secret only) into KAFKA_PASSWORD, never as a plain value.
 */
export class KafkaPasswordSecret extends pulumi.ComponentResource {
  /** ARM id of the secret: the scope of the engine's read grant. */
  readonly secretId: pulumi.Output<string>;
  /** Versionless URI: the app reads the latest version. */
  readonly secretUri: pulumi.Output<string>;
  /** The current version: the app's template carries it (KAFKA_PASSWORD_VERSION), so a new password rolls a revision. */
  readonly version: pulumi.Output<string>;

  constructor(name: string, args: KafkaPasswordSecretArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:KafkaPasswordSecret`, name, {}, opts);
    ({ secretId: this.secretId, secretUri: this.secretUri, version: this.version } = storeVaultPassword(name, { ...args, key: "kafka-password" }, this));
    this.registerOutputs({ secretId: this.secretId, secretUri: this.secretUri, version: this.version });
  }
}
