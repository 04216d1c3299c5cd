/**
 * Local: the default target, for any machine with Docker and no cloud account. The engine image is
 * built locally and runs as one Docker container (restart policy, health check) writing landing
 * files into a host directory.
 */
import { chmodSync, mkdirSync } from "node:fs";
import * as path from "node:path";
import type * as dockerTypes from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { EngineImage } from "../engineImage";
import { checkName } from "../limits";
import { engineEnvironment, ENGINE_HTTP_PORT, engineSpecs, type PlatformSettings } from "../settings";
import { childOf, engineChildOf } from "../children";
import { kafkaFacts } from "../kafka";
import type { LandingFacts, ServiceFacts, TargetOutputs } from "../types";

const T = "postgres-cdc-multicloud:local";
/** Where the landing directory is mounted inside the container. */
export const CONTAINER_LANDING_DIR = "/landing";

export interface LandingStorageArgs {
  /** Host directory (relative to the project directory, or absolute). */
  directory: string;
  /** Sub-directory the engine writes under, like the bucket prefix on the clouds. */
  prefix: string;
}

/**
 * The host directory that receives landing files. Created on `pulumi up` (not on preview) so the
 * container's non-root user can write to it; files stay when the stack is destroyed.
 */
export class LandingStorage extends pulumi.ComponentResource {
  readonly hostDirectory: string;
  readonly url: pulumi.Output<string>;
  readonly rootUrl: pulumi.Output<string>;

  constructor(name: string, args: LandingStorageArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:LandingStorage`, name, {}, opts);
    this.hostDirectory = path.resolve(args.directory);
    if (!pulumi.runtime.isDryRun()) {
      // The engine runs as a non-root user whose uid need not match yours: let it write here.
      const landingDir = path.join(this.hostDirectory, args.prefix);
      mkdirSync(landingDir, { recursive: true });
      chmodSync(landingDir, 0o777);
    }
    this.rootUrl = pulumi.output(`file://${this.hostDirectory}`);
    this.url = pulumi.output(`file://${path.posix.join(this.hostDirectory, args.prefix)}`);
    this.registerOutputs({ hostDirectory: this.hostDirectory, url: this.url });
  }
}

export interface EngineServiceArgs {
  settings: PlatformSettings;
  imageRef: pulumi.Input<string>;
  hostDirectory: string;
}

/**
 * The engine as one Docker container: restarts unless stopped, health check on /healthz, read-only
 * root filesystem, logs rotated by the json-file driver, /healthz /readyz /metrics on localhost.
 * The passwords (PostgreSQL's, Kafka's with SCRAM) are passed as secret-marked environment values (encrypted in Pulumi state).
 */
export class EngineService extends pulumi.ComponentResource {
  readonly name: pulumi.Output<string>;
  readonly id: pulumi.Output<string>;

  constructor(name: string, args: EngineServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:EngineService`, name, {}, opts);
    const docker = require("@pulumi/docker") as typeof dockerTypes;
    const s = args.settings;
    const local = s.local!;
    const containerName = checkName("docker", `${s.baseName}-engine`);
    const sinkUrl = `file://${path.posix.join(CONTAINER_LANDING_DIR, s.landingPrefix)}`;
    const plainEnv = Object.entries(engineEnvironment(s, sinkUrl)).map(([k, v]) => `${k}=${v}`);
    // With SCRAM (sink.auth) the Kafka password travels the same way.
    const envs = pulumi.secret(pulumi.all([s.postgres.password, s.kafkaPassword])).apply(([pw, kafkaPw]) => [...plainEnv, `PG_PASSWORD=${pw}`, ...(kafkaPw !== undefined ? [`KAFKA_PASSWORD=${kafkaPw}`] : [])]);
    const container = new docker.Container(`${name}-container`, {
      name: containerName,
      image: args.imageRef,
      restart: "unless-stopped",
      mustRun: true,
      envs,
      healthcheck: {
        tests: ["CMD", "node", "-e", `fetch('http://127.0.0.1:${ENGINE_HTTP_PORT}/healthz').then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))`],
        interval: "15s",
        timeout: "5s",
        retries: 3,
        startPeriod: "30s",
      },
      volumes: [{ hostPath: args.hostDirectory, containerPath: CONTAINER_LANDING_DIR }],
      ports: [{ internal: ENGINE_HTTP_PORT, external: local.httpPort, ip: "127.0.0.1" }],
      // Lets postgres.host = host.docker.internal reach a database on this machine (Linux too).
      hosts: [{ host: "host.docker.internal", ip: "host-gateway" }],
      ...(local.network ? { networksAdvanced: [{ name: local.network.dockerNetwork }] } : {}),
      readOnly: true,
      tmpfs: { "/tmp": "rw,size=64m" },
      memory: s.container.memoryMiB,
      cpus: String(s.container.cpu),
      stopSignal: "SIGTERM",
      stopTimeout: 30,
      logDriver: "json-file",
      logOpts: { "max-size": "10m", "max-file": "5" },
      labels: Object.entries(s.tags).map(([label, value]) => ({ label, value })),
    }, { parent: this });
    this.name = container.name;
    this.id = container.id;
    this.registerOutputs({ name: this.name, id: this.id });
  }
}

/** Builds the local target under `parent`. */
export function deployLocal(name: string, s: PlatformSettings, parent: pulumi.Resource): TargetOutputs {
  const at = (legacy: string) => childOf(parent, name, legacy);
  const local = s.local!;
  const storage = new LandingStorage(at("landing").name, { directory: local.landingDir, prefix: s.landingPrefix }, at("landing").opts);
  const image = new EngineImage(at("engine-image").name, {
    repository: `${s.baseName}-engine`,
    platform: s.architecture === "arm64" ? "linux/arm64" : "linux/amd64",
  }, at("engine-image").opts);
  const engines = engineSpecs(s).map(({ pipeline, settings }) => {
    const child = engineChildOf(parent, name, "engine", pipeline);
    return { pipeline, settings, service: new EngineService(child.name, { settings, imageRef: image.ref, hostDirectory: storage.hostDirectory }, child.opts) };
  });
  const landing: LandingFacts = {
    cloud: "local",
    url: storage.url,
    rootUrl: storage.rootUrl,
    prefix: s.landingPrefix,
    region: "local",
    tags: s.tags,
    local: { directory: storage.hostDirectory },
  };
  const facts = ({ settings, service }: (typeof engines)[number]): ServiceFacts => ({
    name: service.name,
    id: service.id,
    logLocation: pulumi.interpolate`docker logs ${service.name}`,
    runtime: pulumi.output("docker (this machine)"),
    identities: {},
    commands: {
      tailLogs: pulumi.interpolate`docker logs --follow ${service.name}`,
      checkHealth: pulumi.interpolate`docker inspect --format '{{.State.Health.Status}}' ${service.name} && curl -fsS http://127.0.0.1:${settings.local!.httpPort}/readyz`,
    },
  });
  const serviceFacts = facts(engines[0]);
  const pipelines = s.pipelines ? Object.fromEntries(engines.map((e) => [e.pipeline!, facts(e)])) : undefined;
  return { landing, imageRef: image.ref, service: serviceFacts, pipelines, kafka: kafkaFacts(s.sink) };
}
