/**
 * The top-level component: one CDC platform on the cloud the stack selects. It owns the shape
 * (landing storage → registry → engine image → secret → logs → engine service, and optionally the
 * lakehouse on top of the landing zone); components/<cloud> implement it. Only the selected cloud's
 * implementation, and so only its provider SDK, is loaded.
 */
import * as pulumi from "@pulumi/pulumi";
import type { PlatformSettings } from "./settings";
import type { DeployTarget, LandingFacts, TargetOutputs } from "./types";

/**
 * What a lakehouse (the Databricks component) adds on top of the landing zone. It gets the landing
 * facts and the platform as parent, and reports its job URL.
 */
export type LakehouseFactory = (landing: LandingFacts, opts: { parent: pulumi.Resource }) => { jobUrl: pulumi.Output<string> } | undefined;

export interface CdcPlatformArgs {
  /** The validated stack settings (components/settings.ts readSettings). */
  settings: PlatformSettings;
  /** Optional lakehouse built on the landing zone (e.g. the Databricks job); nothing when omitted. */
  lakehouse?: LakehouseFactory;
}

export class CdcPlatform extends pulumi.ComponentResource {
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
  /** Shell commands to follow the engine's logs and check its health. */
  readonly commands: { tailLogs: pulumi.Output<string>; checkHealth: pulumi.Output<string> };
  /** The Databricks job URL, when a lakehouse is enabled. */
  readonly lakehouseJobUrl?: pulumi.Output<string>;

  constructor(name: string, args: CdcPlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    super("postgres-cdc-multicloud:index:CdcPlatform", name, {}, opts);
    const target = deployTarget(args.settings, this);
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
    this.lakehouseJobUrl = args.lakehouse?.(target.landing, { parent: this })?.jobUrl;
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
      lakehouseJobUrl: this.lakehouseJobUrl,
    });
  }
}

function deployTarget(s: PlatformSettings, parent: pulumi.Resource): TargetOutputs {
  // Lazy requires: a stack loads exactly one provider SDK (they cost seconds and hundreds of MB each).
  const targets: Record<PlatformSettings["cloud"], () => DeployTarget> = {
    aws: () => (require("./aws") as typeof import("./aws")).deployAws,
    azure: () => (require("./azure") as typeof import("./azure")).deployAzure,
    gcp: () => (require("./gcp") as typeof import("./gcp")).deployGcp,
    local: () => (require("./local") as typeof import("./local")).deployLocal,
  };
  return targets[s.cloud]()(s, parent);
}

/** Builds the platform for a given configuration: the program is a function of its settings. */
export function buildPlatform(settings: PlatformSettings, lakehouse?: LakehouseFactory): CdcPlatform {
  return new CdcPlatform(settings.baseName, { settings, lakehouse });
}
