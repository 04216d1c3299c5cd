/**
 * The top-level component: one CDC platform on the cloud its arguments select. It owns the shape
 * (landing storage → registry → engine image → secret → logs → engine service, and optionally the
 * lakehouse on top of the landing zone); components/<cloud> implement it. Only the selected cloud's
 * implementation, and so only its provider SDK, is loaded.
 *
 * Another program uses it directly (`import { CdcPlatform } from "postgres-cdc-multicloud"`, see
 * docs/deploy.md): the arguments are typed, not read from config, and every resource name — the
 * Pulumi names of the children and the cloud names of the resources — derives from the component's
 * own name, so several platforms fit in one stack.
 */
import * as pulumi from "@pulumi/pulumi";
import { PROJECT, resolvePlatform, type PlatformArgs, type PlatformSettings } from "./settings";
import type { DeployTarget, LandingFacts, ServiceFacts, TargetOutputs } from "./types";

/** Where a lakehouse goes: under the platform, named after it. */
export interface LakehousePlacement {
  parent: pulumi.Resource;
  /** The platform's component name: prefix the lakehouse's own names with it. */
  name: string;
  /** The base of the platform's cloud resource names (components/naming.ts baseName). */
  baseName: string;
  /** The platform's `alerts.emails`: a lakehouse pages them when its job fails. */
  alertEmails?: string[];
  /** With `sink: {kind: kafka}`: the cluster and topic prefix the lakehouse reads instead of landing objects. */
  kafka?: TargetOutputs["kafka"];
}

/**
 * What a lakehouse (the Databricks component) adds on top of the landing zone. It gets the landing
 * facts and where to put itself, and reports its job URL.
 */
export type LakehouseFactory = (landing: LandingFacts, placement: LakehousePlacement) => { jobUrl: pulumi.Output<string> } | undefined;

export interface CdcPlatformArgs extends PlatformArgs {
  /** Optional lakehouse built on the landing zone (e.g. the Databricks job); nothing when omitted. */
  lakehouse?: LakehouseFactory;
}

export class CdcPlatform extends pulumi.ComponentResource {
  /** The complete settings the platform was built from (defaults filled in). */
  readonly settings: PlatformSettings;
  /** Landing storage facts: URL, bucket/container/account names and ids, region, resource group, tags. */
  readonly landing: LandingFacts;
  readonly landingUrl: pulumi.Output<string>;
  /** The image the service runs: repository@sha256:digest. */
  readonly imageRef: pulumi.Output<string>;
  readonly serviceName: pulumi.Output<string>;
  readonly serviceId: pulumi.Output<string>;
  readonly logLocation: pulumi.Output<string>;
  /** What the engine runs in: ECS cluster, Container Apps environment, Cloud Run project/region, Docker. */
  readonly runtime: pulumi.Output<string>;
  /** AWS: the engine's security group id (for your database's inbound rule). */
  readonly securityGroupId?: pulumi.Output<string>;
  /** The identities the engine acts as. */
  readonly identities: Record<string, pulumi.Output<string>>;
  /** Keyless database login (postgres.auth): the role the engine logs in as and the database-side step for it. */
  readonly databaseLogin?: ServiceFacts["databaseLogin"];
  /** Shell commands to follow the engine's logs and check its health. */
  readonly commands: { tailLogs: pulumi.Output<string>; checkHealth: pulumi.Output<string> };
  /** The Databricks job URL, when a lakehouse is enabled. */
  readonly lakehouseJobUrl?: pulumi.Output<string>;
  /** With `pipelines`: each engine's service, identities and commands, by pipeline name (the fields above are the first's). */
  readonly pipelines?: Record<string, ServiceFacts>;

  /**
   * @param name 1-8 lower-case letters or digits: it starts every resource name (e.g. "orders").
   *   Bad arguments stop the deployment with one message listing each problem.
   */
  constructor(name: string, args: CdcPlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${PROJECT}:index:CdcPlatform`, name, {}, opts);
    const { lakehouse, ...platformArgs } = args;
    this.settings = resolvePlatform(name, platformArgs, pulumi.getStack(), pulumi.getProject());
    const target = deployTarget(name, this.settings, this);
    this.landing = target.landing;
    this.landingUrl = target.landing.url;
    this.imageRef = target.imageRef;
    this.serviceName = target.service.name;
    this.serviceId = target.service.id;
    this.logLocation = target.service.logLocation;
    this.runtime = target.service.runtime;
    this.securityGroupId = target.service.securityGroupId;
    this.identities = target.service.identities;
    this.commands = target.service.commands;
    this.databaseLogin = target.service.databaseLogin;
    this.pipelines = target.pipelines;
    this.lakehouseJobUrl = lakehouse?.(target.landing, { parent: this, name, baseName: this.settings.baseName, alertEmails: this.settings.alerts?.emails, kafka: target.kafka })?.jobUrl;
    this.registerOutputs({
      landingUrl: this.landingUrl,
      imageRef: this.imageRef,
      serviceName: this.serviceName,
      serviceId: this.serviceId,
      logLocation: this.logLocation,
      runtime: this.runtime,
      securityGroupId: this.securityGroupId,
      identities: this.identities,
      commands: this.commands,
      databaseLogin: this.databaseLogin,
      lakehouseJobUrl: this.lakehouseJobUrl,
      pipelines: this.pipelines,
    });
  }
}

function deployTarget(name: string, s: PlatformSettings, parent: pulumi.Resource): TargetOutputs {
  // Lazy requires: a stack loads exactly one provider SDK (they cost seconds and hundreds of MB each).
  const targets: Record<PlatformSettings["cloud"], () => DeployTarget> = {
    aws: () => (require("./aws") as typeof import("./aws")).deployAws,
    azure: () => (require("./azure") as typeof import("./azure")).deployAzure,
    gcp: () => (require("./gcp") as typeof import("./gcp")).deployGcp,
    local: () => (require("./local") as typeof import("./local")).deployLocal,
  };
  return targets[s.cloud]()(name, s, parent);
}
