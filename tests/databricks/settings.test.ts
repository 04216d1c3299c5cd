/**
 * The `databricks` setting: defaults, derived choices, and one clear message per bad value.
 */
import assert from "node:assert/strict";
import { DatabricksConfigError, parseDatabricksSettings, resolveTables } from "../../components/databricks/settings";
import { propagationWaitMs } from "../../components/databricks/propagation";

const KEY = "postgres-cdc-multicloud:databricks";
function problems(raw: unknown): string[] {
  try {
    parseDatabricksSettings(raw, KEY);
  } catch (err) {
    assert.ok(err instanceof DatabricksConfigError, String(err));
    return err.problems;
  }
  assert.fail("expected a DatabricksConfigError");
}

describe("databricks: settings", () => {
  it("is disabled when not set, with production defaults", () => {
    const s = parseDatabricksSettings(undefined, KEY);
    assert.equal(s.enabled, false);
    assert.deepEqual(s.catalog, { name: "cdc", create: true });
    assert.deepEqual(s.schemas, { bronze: "bronze", silver: "silver", gold: "gold", create: true });
    assert.equal(s.schedule.mode, "scheduled");
    assert.equal(s.schedule.cron, "0 0/15 * * * ?");
    assert.equal(s.compute.kind, "serverless");
    assert.equal(s.bronzeMaxRetries, 3);
    assert.equal(s.token, undefined);
  });

  it("defaults continuous mode to a job cluster (serverless cannot run time-triggered streams)", () => {
    assert.equal(parseDatabricksSettings({ enabled: true, schedule: { mode: "continuous" } }, KEY).compute.kind, "cluster");
    assert.deepEqual(problems({ enabled: true, schedule: { mode: "continuous" }, compute: { kind: "serverless" } }), [
      `${KEY}.compute.kind is "serverless", but schedule.mode is "continuous": serverless jobs cannot run time-triggered streams; for example ${KEY}.compute.kind="cluster" (or schedule.mode="scheduled")`,
    ]);
  });

  it("names the key, the problem and a valid example for each bad value", () => {
    assert.deepEqual(problems({ enabled: true, schedule: { cron: "every 5 minutes" } }), [
      `${KEY}.schedule.cron must be a Quartz cron expression with 6 or 7 fields (seconds minutes hours day-of-month month day-of-week [year]); for example ${KEY}.schedule.cron="0 0/15 * * * ?"`,
    ]);
    const many = problems({ enabled: "yes", host: "http://insecure", catalog: { name: "My-Catalog" }, notifications: { onFailure: ["nobody"] }, colour: "blue" });
    assert.equal(many.length, 5, many.join("\n"));
    assert.ok(many.some((p) => p.startsWith(`${KEY}.enabled `) && p.includes("for example")));
    assert.ok(many.some((p) => p.startsWith(`${KEY}.host must be the workspace URL`)));
    assert.ok(many.some((p) => p.startsWith(`${KEY}.catalog.name must be a lower-case identifier`)));
    assert.ok(many.some((p) => p.startsWith(`${KEY}.notifications.onFailure.0 must be an e-mail address`)));
    assert.ok(many.some((p) => p.includes(`"colour"`)));
    assert.match(problems({ schemas: { bronze: "x", silver: "x" } })[0], /must name three different schemas/);
    assert.match(problems({ runAs: "someone@example.com" })[0], /runAs must be a service principal application ID/);
  });

  it("takes tables from the setting, else from the engine's list; keys only where configured (else the schema manifest's)", () => {
    const listed = parseDatabricksSettings({ enabled: true, tables: [{ name: "public.orders", primaryKey: ["order_id"] }, { name: "public.users" }, { name: "public.logs" }], primaryKeys: { "public.users": ["user_id"] } }, KEY);
    assert.deepEqual(resolveTables(listed, ["ignored.table"], KEY), [
      { name: "public.orders", primaryKey: ["order_id"] },
      { name: "public.users", primaryKey: ["user_id"] },
      { name: "public.logs", primaryKey: [] },
    ]);
    const derived = parseDatabricksSettings({ enabled: true, primaryKeys: { "warehouse.stock_item": ["item_id"] } }, KEY);
    assert.deepEqual(resolveTables(derived, ["warehouse.stock_item", "public.users"], KEY), [
      { name: "warehouse.stock_item", primaryKey: ["item_id"] },
      { name: "public.users", primaryKey: [] },
    ]);
    // Settings of the inference era are refused with what to do instead, never silently ignored.
    assert.throws(() => parseDatabricksSettings({ enabled: true, schemaHints: { "public.orders": "unit_price DECIMAL(12,2)" } }, KEY), /schemaHints is no longer used: bronze takes every column's type from the engine's schema manifests/);
    assert.throws(() => parseDatabricksSettings({ enabled: true, defaultPrimaryKey: ["id"] }, KEY), /defaultPrimaryKey is no longer used: a table's key comes from its schema manifest/);
    assert.throws(() => resolveTables(derived, [], KEY), /databricks\.tables is not set and the engine captures no explicit table list; for example/);
    assert.throws(
      () => resolveTables(parseDatabricksSettings({ tables: [{ name: "a.b" }, { name: "a.b" }] }, KEY), [], KEY),
      /lists "a\.b" twice/,
    );
  });

  it("waits for cloud IAM propagation only while a grant is fresh", () => {
    const now = Date.parse("2026-11-21T12:00:00Z");
    assert.equal(propagationWaitMs("2026-11-21T12:00:00Z", 20_000, now), 20_000);
    assert.equal(propagationWaitMs("2026-11-21T11:59:55Z", 20_000, now), 15_000);
    assert.equal(propagationWaitMs("2026-11-21T11:00:00Z", 20_000, now), 0, "an old grant: no wait on later updates");
    assert.equal(propagationWaitMs("2026-11-21T12:05:00Z", 20_000, now), 20_000, "clock skew never waits longer than the propagation time");
    assert.equal(propagationWaitMs(undefined, 20_000, now), 0);
    assert.equal(propagationWaitMs("not a date", 20_000, now), 0);
  });
});
