/**
 * A real Apache Kafka broker for tests: KRaft mode, broker and controller in one JVM, started from
 * Apache Kafka's own jars on Maven Central. The jars are resolved once with Maven
 * (`dependency:copy-dependencies` on a generated pom) into .cache/kafka/<version>/ and reused.
 *
 * Listeners: PLAINTEXT (anonymous super user, what most tests use) and SASL_PLAINTEXT with
 * SCRAM-SHA-256 users created at format time, under the StandardAuthorizer (no ACL: denied), so
 * authorization failures are the broker's own.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connect as tcpConnect } from "node:net";
import { freePort } from "../../support/postgres";
import { setupCommand } from "../../support/priority";

export const KAFKA_VERSION = "4.1.1";
const ROOT = resolve(__dirname, "../../..");
const CACHE = join(ROOT, ".cache", "kafka", KAFKA_VERSION);

export interface ScramUser {
  name: string;
  password: string;
}

export interface KafkaBroker {
  /** host:port of the PLAINTEXT listener. */
  bootstrap: string;
  /** host:port of the SASL_PLAINTEXT (SCRAM-SHA-256) listener. */
  saslBootstrap: string;
  /** host:port of the SSL listener (certificate for 127.0.0.1 signed by `caFile`). */
  sslBootstrap: string;
  /** PEM of the test CA that signed the SSL listener's certificate. */
  caFile: string;
  /** Kills the JVM (SIGKILL: acknowledged writes are in the page cache, as after a process crash). */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data. */
  start(): Promise<void>;
  dispose(): Promise<void>;
}

let resolvingJars: Promise<string> | undefined;

/**
 * The broker's jars (resolved from Maven Central on first use). Once per process: concurrent
 * callers (tests/support/prefetch.ts and the tests) share one resolution.
 */
export function kafkaJars(): Promise<string> {
  return (resolvingJars ??= resolveKafkaJars());
}

async function resolveKafkaJars(): Promise<string> {
  const lib = join(CACHE, "lib");
  if (existsSync(join(lib, `kafka_2.13-${KAFKA_VERSION}.jar`)) && existsSync(join(CACHE, "complete"))) return lib;
  await mkdir(CACHE, { recursive: true });
  const pom = `<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>local.test</groupId><artifactId>kafka-broker</artifactId><version>1</version><packaging>pom</packaging>
<dependencies><dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>${KAFKA_VERSION}</version></dependency></dependencies>
</project>
`;
  await writeFile(join(CACHE, "pom.xml"), pom);
  await new Promise<void>((resolve, reject) => {
    execFile(
      ...setupCommand("mvn", ["-B", "-q", `-Dmaven.repo.local=${join(ROOT, ".cache", "kafka", "m2")}`, "-f", join(CACHE, "pom.xml"), "dependency:copy-dependencies", "-DincludeScope=runtime", `-DoutputDirectory=${lib}`]),
      { encoding: "utf8", timeout: 300_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`could not resolve Apache Kafka ${KAFKA_VERSION} from Maven Central (mvn: ${err.message}): ${stdout}${stderr}`));
        else resolve();
      },
    );
  });
  await writeFile(join(CACHE, "complete"), new Date().toISOString());
  return lib;
}

async function portOpen(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = tcpConnect({ host: "127.0.0.1", port }, () => {
      socket.destroy();
      done(true);
    });
    socket.on("error", () => done(false));
  });
}

/** A test CA and a server certificate for 127.0.0.1 it signed, as a PEM keystore (key + chain). */
function makeCertificates(dir: string): { ca: string; keystore: string } {
  const run = (args: string[]) => {
    const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
  };
  run(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=cdc-test-ca"]);
  run(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]);
  writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  run(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext"]);
  writeFileSync(join(dir, "server.pem"), readFileSync(join(dir, "server.key"), "utf8") + readFileSync(join(dir, "server.crt"), "utf8"));
  return { ca: join(dir, "ca.pem"), keystore: join(dir, "server.pem") };
}

export async function startKafka(options: { users?: ScramUser[] } = {}): Promise<KafkaBroker> {
  const lib = await kafkaJars();
  const classpath = (await readdir(lib)).filter((f) => f.endsWith(".jar")).map((f) => join(lib, f)).join(":");
  const dir = await mkdtemp(join(tmpdir(), "cdc-kafka-"));
  const [port, saslPort, sslPort, controllerPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const tls = makeCertificates(dir);
  const properties = [
    "process.roles=broker,controller",
    "node.id=1",
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${port},SASL_PLAINTEXT://127.0.0.1:${saslPort},SSL://127.0.0.1:${sslPort},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port},SASL_PLAINTEXT://127.0.0.1:${saslPort},SSL://127.0.0.1:${sslPort}`,
    "listener.name.ssl.ssl.keystore.type=PEM",
    `listener.name.ssl.ssl.keystore.location=${tls.keystore}`,
    "controller.listener.names=CONTROLLER",
    "inter.broker.listener.name=PLAINTEXT",
    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT",
    "sasl.enabled.mechanisms=SCRAM-SHA-256",
    "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "super.users=User:ANONYMOUS",
    "allow.everyone.if.no.acl.found=false",
    `log.dirs=${join(dir, "data")}`,
    "num.partitions=1",
    "auto.create.topics.enable=false",
    "offsets.topic.replication.factor=1",
    "offsets.topic.num.partitions=1",
    "transaction.state.log.replication.factor=1",
    "transaction.state.log.min.isr=1",
    "share.coordinator.state.topic.replication.factor=1",
    "share.coordinator.state.topic.min.isr=1",
    "group.initial.rebalance.delay.ms=0",
    "log.flush.interval.messages=9223372036854775807",
  ].join("\n");
  const config = join(dir, "server.properties");
  await writeFile(config, properties + "\n");
  const java = (args: string[]) => ["-Xms64m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-Dlog4j2.level=WARN", "-cp", classpath, ...args];
  const scram = (options.users ?? []).flatMap((u) => ["--add-scram", `SCRAM-SHA-256=[name=${u.name},password=${u.password}]`]);
  const format = spawnSync("java", java(["kafka.tools.StorageTool", "format", "-t", randomUUID(), "-c", config, ...scram]), { encoding: "utf8", timeout: 60_000 });
  if (format.status !== 0) throw new Error(`kafka-storage format failed (exit ${format.status}): ${format.stdout}${format.stderr}`);

  let child: ChildProcess | undefined;
  let output = "";
  const start = async () => {
    output = "";
    const proc = spawn("java", java(["kafka.Kafka", config]), { stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    proc.stdout!.on("data", (d: Buffer) => void (output = (output + d.toString()).slice(-20_000)));
    proc.stderr!.on("data", (d: Buffer) => void (output = (output + d.toString()).slice(-20_000)));
    const deadline = Date.now() + 90_000;
    while (!(await portOpen(port))) {
      if (proc.exitCode !== null) throw new Error(`the Kafka broker exited with ${proc.exitCode}: ${output}`);
      if (Date.now() > deadline) throw new Error(`the Kafka broker did not open port ${port} within 90 s: ${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stop = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGKILL");
    await exited;
  };
  await start();
  return {
    bootstrap: `127.0.0.1:${port}`,
    saslBootstrap: `127.0.0.1:${saslPort}`,
    sslBootstrap: `127.0.0.1:${sslPort}`,
    caFile: tls.ca,
    stop,
    start,
    async dispose() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
