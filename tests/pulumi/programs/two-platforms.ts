/**
 * Another Pulumi program using this package the way docs/deploy.md shows: two CDC platforms in one
 * stack, built from typed arguments (no stack config), named "orders" and "billing".
 */
import * as pulumi from "@pulumi/pulumi";
import { CdcPlatform, type CdcPlatformArgs } from "postgres-cdc-multicloud";

const database = (name: string): CdcPlatformArgs["postgres"] => ({
  host: `${name}.db.example.com`,
  database: name,
  user: "cdc_user",
  slot: `cdc_${name}`,
  tables: [`public.${name}`],
  password: pulumi.secret(process.env.TEST_POSTGRES_PASSWORD ?? "Pw-for-tests-7c1e9a"),
});
const common = { cloud: "aws", aws: { region: "eu-west-1" }, tags: { team: "data-platform" } } as const;

const orders = new CdcPlatform("orders", { ...common, postgres: database("orders") });
const billing = new CdcPlatform("billing", { ...common, postgres: database("billing"), landingRetentionDays: 90, container: { cpu: 0.5, memoryMiB: 1024 } });

export const ordersLandingUrl = orders.landingUrl;
export const billingLandingUrl = billing.landingUrl;
export const ordersLogs = orders.commands.tailLogs;
export const billingLogs = billing.commands.tailLogs;
