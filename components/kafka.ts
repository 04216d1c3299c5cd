/**
 * The stack setting `sink: {kind: kafka, …}` (issue 15): the engine publishes to Kafka instead of
 * landing objects. Without `bootstrap` the program creates its cloud's Kafka service (AWS: MSK
 * Serverless, components/aws/kafka.ts; GCP: Managed Kafka, components/gcp/kafka.ts); with it, the engine points at an existing cluster. Only
 * keyless mechanisms are wired here (the platform identity): SCRAM would need a second secret.
 */
import { z } from "zod";

/** Keyless KAFKA_AUTH values per cloud (container/src/config KAFKA_AUTHS); `none` for a cluster without SASL. */
const DEPLOYABLE_AUTHS = ["none", "aws-msk-iam", "azure-entra", "google-adc"] as const;

const bootstrapList = /^[A-Za-z0-9.-]+:\d{1,5}(,[A-Za-z0-9.-]+:\d{1,5})*$/;

export const kafkaSinkSchema = z.object({
  kind: z.literal("kafka"),
  /** An existing cluster's bootstrap brokers, `host:port[,host:port…]`; absent: the cloud's Kafka service is created (aws). */
  bootstrap: z.string().regex(bootstrapList, "must be host:port[,host:port…]").optional(),
  /** TLS to the brokers (kafka+ssl://); default true. */
  tls: z.boolean().default(true),
  /** KAFKA_AUTH; default: the cloud's keyless mechanism (aws-msk-iam, azure-entra, google-adc). */
  auth: z.enum(DEPLOYABLE_AUTHS).optional(),
  topicPrefix: z.string().regex(/^[A-Za-z0-9._-]{1,120}$/, "must be 1 to 120 of A-Z a-z 0-9 . _ -").default("cdc"),
  partitions: z.number().int().min(1).max(10_000).optional(),
  replication: z.number().int().min(1).max(32).optional(),
  createTopics: z.boolean().default(true),
  tombstones: z.boolean().default(true),
}).strict();

export const sinkSchema = z.discriminatedUnion("kind", [z.object({ kind: z.literal("object") }).strict(), kafkaSinkSchema]);

export type SinkSettings = z.output<typeof sinkSchema>;
export type KafkaSinkSettings = z.output<typeof kafkaSinkSchema>;

const KEYLESS: Record<string, (typeof DEPLOYABLE_AUTHS)[number]> = { aws: "aws-msk-iam", azure: "azure-entra", gcp: "google-adc", local: "none" };

/** The problems of a sink setting on a cloud (besides its schema). */
export function kafkaSinkProblems(sink: SinkSettings, cloud: string, gcpSubnetwork?: string): string[] {
  if (sink.kind !== "kafka") return [];
  const problems: string[] = [];
  if (!sink.bootstrap && cloud !== "aws" && cloud !== "gcp") {
    problems.push(`sink.bootstrap is required on ${cloud}: the program creates a Kafka service on aws (MSK Serverless) and gcp (Managed Kafka) only; point the engine at your existing cluster, e.g. ${cloud === "azure" ? "<namespace>.servicebus.windows.net:9093" : "kafka.internal.example.com:9092"}`);
  }
  if (!sink.bootstrap && cloud === "gcp" && !gcpSubnetwork) {
    problems.push("sink: creating Managed Kafka needs network.network and network.subnetwork (direct VPC egress): the cluster's endpoints are placed in that subnetwork, and the engine reaches them through it");
  }
  const auth = kafkaAuth(sink, cloud);
  if (auth !== "none" && !sink.tls) problems.push(`sink.tls must be true with sink.auth ${auth} (a bearer token needs TLS)`);
  return problems;
}

export function kafkaAuth(sink: KafkaSinkSettings, cloud: string): (typeof DEPLOYABLE_AUTHS)[number] {
  return sink.auth ?? KEYLESS[cloud] ?? "none";
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
    KAFKA_CREATE_TOPICS: String(sink.createTopics),
    KAFKA_TOMBSTONES: String(sink.tombstones),
  };
  if (sink.partitions !== undefined) env.KAFKA_TOPIC_PARTITIONS = String(sink.partitions);
  if (sink.replication !== undefined) env.KAFKA_TOPIC_REPLICATION = String(sink.replication);
  return env;
}
