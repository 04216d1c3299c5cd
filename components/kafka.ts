/**
 * The stack setting `sink: {kind: kafka, …}` (issue 15): the engine publishes to Kafka instead of
 * landing objects. Without `bootstrap` the program creates its cloud's Kafka service (AWS: MSK
 * Serverless, components/aws/kafka.ts; Azure: an Event Hubs namespace with an event hub per topic,
 * components/azure/kafka.ts; GCP: Managed Kafka, components/gcp/kafka.ts); with it, the engine
 * points at an existing cluster.
 */
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { LIMITS, NAME_RULES } from "./limits";

/**
 * KAFKA_AUTH values a stack may choose (container/src/config KAFKA_AUTHS): the clouds' keyless
 * mechanisms, `none` for a cluster without SASL, and SCRAM for an existing cluster, whose password
 * (the `kafkaPassword` secret) goes into the cloud's secret store and reaches the engine from there.
 */
const DEPLOYABLE_AUTHS = ["none", "scram-sha-256", "scram-sha-512", "aws-msk-iam", "azure-entra", "google-adc"] as const;
const SCRAM = new Set<string>(["scram-sha-256", "scram-sha-512"]);

const bootstrapList = /^[A-Za-z0-9.-]+:\d{1,5}(,[A-Za-z0-9.-]+:\d{1,5})*$/;

export const kafkaSinkSchema = z.object({
  kind: z.literal("kafka"),
  /** An existing cluster's bootstrap brokers, `host:port[,host:port…]`; absent: the cloud's Kafka service is created (aws). */
  bootstrap: z.string().regex(bootstrapList, "must be host:port[,host:port…]").optional(),
  /** TLS to the brokers (kafka+ssl://); default true. */
  tls: z.boolean().default(true),
  /** KAFKA_AUTH; default: the cloud's keyless mechanism (aws-msk-iam, azure-entra, google-adc). */
  auth: z.enum(DEPLOYABLE_AUTHS).optional(),
  /** The SCRAM user (KAFKA_USERNAME) with auth scram-sha-256/512; its password is the `kafkaPassword` secret. */
  username: z.string().min(1).max(255).optional(),
  topicPrefix: z.string().regex(/^[A-Za-z0-9._-]{1,120}$/, "must be 1 to 120 of A-Z a-z 0-9 . _ -").default("cdc"),
  partitions: z.number().int().min(1).max(10_000).optional(),
  replication: z.number().int().min(1).max(32).optional(),
  createTopics: z.boolean().default(true),
  tombstones: z.boolean().default(true),
  /**
   * The Event Hubs namespace the program creates on azure without `bootstrap`: its tier (Standard,
   * the smallest with the Kafka endpoint and log compaction; Premium for more event hubs and
   * partitions), its throughput or processing units, and how long the data event hubs keep events.
   */
  eventHubs: z.object({
    tier: z.enum(["Standard", "Premium"]).default("Standard"),
    capacity: z.number().int().min(1).max(20).default(1),
    retentionHours: z.number().int().min(1).optional(),
  }).strict().optional(),
}).strict();

export const sinkSchema = z.discriminatedUnion("kind", [z.object({ kind: z.literal("object") }).strict(), kafkaSinkSchema]);

export type SinkSettings = z.output<typeof sinkSchema>;
export type KafkaSinkSettings = z.output<typeof kafkaSinkSchema>;

const KEYLESS: Record<string, (typeof DEPLOYABLE_AUTHS)[number]> = { aws: "aws-msk-iam", azure: "azure-entra", gcp: "google-adc", local: "none" };

/** Whether the program creates the topics itself (Event Hubs: one event hub per topic, made before the engine runs). */
export function topicsProvisioned(sink: KafkaSinkSettings, cloud: string): boolean {
  return cloud === "azure" && !sink.bootstrap;
}

/** The topics an engine set publishes to: one per table, the shared state topic and the schema topic. */
export function kafkaTopics(topicPrefix: string, tables: string[]): { data: string[]; state: string; schema: string } {
  return { data: tables.map((t) => `${topicPrefix}.${t}`), state: `${topicPrefix}._cdc_state`, schema: `${topicPrefix}._schema` };
}

/** The problems of creating an Event Hubs namespace for these tables: every topic must be an event hub the tier allows. */
function eventHubsProblems(sink: KafkaSinkSettings, tables: string[]): string[] {
  const problems: string[] = [];
  const eh = sink.eventHubs ?? { tier: "Standard" as const, capacity: 1, retentionHours: undefined };
  const tier = LIMITS.azure.eventHubs[eh.tier];
  if (tables.length === 0) {
    problems.push("sink: creating Event Hubs needs the tables listed (postgres.tables, or each pipeline's tables): Event Hubs cannot create an event hub when the engine first publishes to it, so the program creates one per table; e.g. postgres.tables [\"public.users\"]");
    return problems;
  }
  const topics = kafkaTopics(sink.topicPrefix, tables);
  const all = [...topics.data, topics.state, topics.schema];
  const bad = all.filter((t) => !NAME_RULES.eventHub(t));
  if (bad.length > 0) problems.push(`sink: ${bad.join(", ")} cannot be an event hub name (1-256 letters, digits, . _ -, a letter or digit at both ends): change sink.topicPrefix or leave out the table`);
  if (all.length > tier.eventHubsPerNamespace) {
    problems.push(`sink: an Event Hubs ${eh.tier} namespace holds at most ${tier.eventHubsPerNamespace} event hubs, and these ${tables.length} tables need ${all.length} (one per table plus ${topics.state} and ${topics.schema})${eh.tier === "Standard" ? `: set sink.eventHubs.tier Premium (up to ${LIMITS.azure.eventHubs.Premium.eventHubsPerNamespace})` : ""}, or use an existing cluster with sink.bootstrap`);
  }
  const partitions = sink.partitions ?? 1;
  if (partitions > tier.partitionsPerEventHub) problems.push(`sink.partitions ${partitions} is more than an Event Hubs ${eh.tier} event hub allows (${tier.partitionsPerEventHub})`);
  if (!(tier.capacity as readonly number[]).includes(eh.capacity)) problems.push(`sink.eventHubs.capacity ${eh.capacity} is not an Event Hubs ${eh.tier} capacity (${tier.capacity.join(", ")})`);
  if (eh.tier === "Premium") {
    const total = topics.data.length * partitions + 2;
    const max = LIMITS.azure.eventHubs.Premium.partitionsPerCapacityUnit * eh.capacity;
    if (total > max) problems.push(`sink: ${total} partitions in all exceed the ${max} of an Event Hubs Premium namespace with ${eh.capacity} processing unit(s): raise sink.eventHubs.capacity or lower sink.partitions`);
  }
  const hours = eh.retentionHours ?? LIMITS.azure.eventHubs.defaultRetentionHours;
  if (hours > tier.retentionHoursMax) problems.push(`sink.eventHubs.retentionHours ${hours} is more than Event Hubs ${eh.tier} keeps events (${tier.retentionHoursMax} hours)`);
  return problems;
}

/** What else the sink's rules look at: GCP's subnetwork, every table the stack captures, whether `kafkaPassword` is set. */
export interface KafkaSinkContext {
  gcpSubnetwork?: string;
  tables?: string[];
  passwordSet?: boolean;
}

/** Whether the engine logs in with SCRAM (and so needs the `kafkaPassword` secret). */
export function usesScram(sink: SinkSettings | undefined): boolean {
  return sink?.kind === "kafka" && SCRAM.has(sink.auth ?? "");
}

/** The problems of a sink setting on a cloud (besides its schema). */
export function kafkaSinkProblems(sink: SinkSettings, cloud: string, context: KafkaSinkContext = {}): string[] {
  const { gcpSubnetwork, tables = [], passwordSet = false } = context;
  if (sink.kind !== "kafka") {
    return passwordSet ? ["kafkaPassword is only used with sink {kind: kafka, auth: scram-sha-256 or scram-sha-512}: remove it"] : [];
  }
  const problems: string[] = [];
  if (usesScram(sink)) {
    if (!sink.bootstrap) problems.push(`sink.auth ${sink.auth} needs sink.bootstrap (an existing cluster): the Kafka services the program creates authenticate with the platform identity only (MSK Serverless: IAM, Event Hubs: Entra, Managed Kafka: application default credentials); leave sink.auth unset for them`);
    if (!sink.username) problems.push(`sink.username is required with sink.auth ${sink.auth} (the SCRAM user); e.g. cdc-engine`);
    if (!passwordSet) problems.push(`kafkaPassword is required with sink.auth ${sink.auth} (the SCRAM user's password; it is kept in the cloud's secret store, never in the engine's definition): pulumi config set --secret postgres-cdc-multicloud:kafkaPassword '<password>'`);
  } else if (sink.username !== undefined || passwordSet) {
    problems.push(`sink.username and kafkaPassword are only used with sink.auth scram-sha-256 or scram-sha-512 (got ${kafkaAuth(sink, cloud)}): set sink.auth or remove them`);
  }
  if (!sink.bootstrap && cloud !== "aws" && cloud !== "gcp" && cloud !== "azure") {
    problems.push(`sink.bootstrap is required on ${cloud}: the program creates a Kafka service on aws (MSK Serverless), azure (Event Hubs) and gcp (Managed Kafka) only; point the engine at your existing cluster, e.g. kafka.internal.example.com:9092`);
  }
  if (sink.eventHubs && !topicsProvisioned(sink, cloud)) problems.push("sink.eventHubs is only used when the program creates an Event Hubs namespace (azure without sink.bootstrap): remove it");
  if (topicsProvisioned(sink, cloud)) {
    problems.push(...eventHubsProblems(sink, tables));
    if (sink.auth !== undefined && sink.auth !== "azure-entra" && !usesScram(sink)) problems.push(`sink.auth must be azure-entra (or unset) when the program creates Event Hubs: the namespace accepts Microsoft Entra tokens only (got ${sink.auth})`);
  }
  if (!sink.bootstrap && cloud === "gcp" && !gcpSubnetwork) {
    problems.push("sink: creating Managed Kafka needs network.network and network.subnetwork (direct VPC egress): the cluster's endpoints are placed in that subnetwork, and the engine reaches them through it");
  }
  const auth = kafkaAuth(sink, cloud);
  if (auth !== "none" && !SCRAM.has(auth) && !sink.tls) problems.push(`sink.tls must be true with sink.auth ${auth} (a bearer token needs TLS)`);
  return problems;
}

export function kafkaAuth(sink: KafkaSinkSettings, cloud: string): (typeof DEPLOYABLE_AUTHS)[number] {
  return sink.auth ?? KEYLESS[cloud] ?? "none";
}

/** The Kafka facts a target reports (components/types.ts): the created service's bootstrap, else the setting's. */
export function kafkaFacts(sink: SinkSettings, created?: pulumi.Input<string>): { bootstrap: pulumi.Output<string>; topicPrefix: string } | undefined {
  if (sink.kind !== "kafka") return undefined;
  return { bootstrap: pulumi.output(created ?? sink.bootstrap!), topicPrefix: sink.topicPrefix };
}

/**
 * The engine's Kafka variables (docs/engine.md): SINK_URL from the bootstrap list, KAFKA_* from
 * the setting. Empty for an object-store sink.
 */
export function kafkaEnvironment(sink: SinkSettings | undefined, cloud: string, bootstrap: string | undefined): Record<string, string> {
  if (sink?.kind !== "kafka") return {};
  const brokers = bootstrap ?? sink.bootstrap;
  if (!brokers) throw new Error("the Kafka sink has no bootstrap brokers");
  const env: Record<string, string> = {
    SINK_URL: `${sink.tls ? "kafka+ssl" : "kafka"}://${brokers}`,
    KAFKA_TOPIC_PREFIX: sink.topicPrefix,
    KAFKA_AUTH: kafkaAuth(sink, cloud),
    // Event Hubs made by the program: every topic exists before the engine starts, and its identity may not create any.
    KAFKA_CREATE_TOPICS: String(sink.createTopics && !topicsProvisioned(sink, cloud)),
    KAFKA_TOMBSTONES: String(sink.tombstones),
  };
  // The password is never here: each target injects KAFKA_PASSWORD from its secret store.
  if (usesScram(sink)) env.KAFKA_USERNAME = sink.username!;
  if (topicsProvisioned(sink, cloud)) return env;
  if (sink.partitions !== undefined) env.KAFKA_TOPIC_PARTITIONS = String(sink.partitions);
  if (sink.replication !== undefined) env.KAFKA_TOPIC_REPLICATION = String(sink.replication);
  return env;
}
