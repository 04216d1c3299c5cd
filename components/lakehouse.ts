/**
 * The Databricks lakehouse as a CdcPlatform's `lakehouse` (docs/databricks.md). The Databricks
 * component and its provider SDK are loaded only when a lakehouse is actually built.
 */
import type { LakehouseFactory } from "./platform";
import { SettingsError, type StackSettings } from "./settings";
import type { DatabricksSettings } from "./databricks/settings";

/** Configuration errors from the Databricks component become the same one-message preview failure. */
function asSettingsError<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const problems = (err as { problems?: unknown }).problems;
    if (Array.isArray(problems)) throw new SettingsError(problems.map(String));
    throw err;
  }
}

/**
 * The medallion job on the platform's landing zone, named after the platform (`<name>-databricks`,
 * aliased to the old fixed name "databricks"). `engineTables`: the tables the engine captures.
 */
export function databricksLakehouse(settings: DatabricksSettings, engineTables: string[]): LakehouseFactory {
  return (landing, placement) => asSettingsError(() => {
    const { createDatabricksPipeline } = require("./databricks") as typeof import("./databricks");
    // The platform's on-call also hears of a failed job run (the job's own failure emails).
    const onFailure = [...new Set([...settings.notifications.onFailure, ...(placement.alertEmails ?? [])])];
    return createDatabricksPipeline(`${placement.name}-databricks`, {
      landing,
      settings: { ...settings, notifications: { ...settings.notifications, onFailure } },
      engineTables,
      namePrefix: placement.baseName,
      tags: landing.tags,
      kafka: placement.kafka,
    }, { parent: placement.parent, aliases: [{ name: "databricks" }] });
  });
}

/** The lakehouse the stack's `databricks` setting asks for, or none when it is disabled. */
export function stackLakehouse(stack: StackSettings): LakehouseFactory | undefined {
  const { parseDatabricksSettings, DATABRICKS_CONFIG_KEY } = require("./databricks/settings") as typeof import("./databricks/settings");
  const raw = stack.config.getObject<unknown>(DATABRICKS_CONFIG_KEY);
  const settings = asSettingsError(() => parseDatabricksSettings(raw, `${stack.config.name}:${DATABRICKS_CONFIG_KEY}`));
  // Every engine's tables: the single pipeline's, or all the pipelines'.
  const tables = stack.args.pipelines ? stack.args.pipelines.flatMap((p) => p.tables) : stack.args.postgres.tables ?? [];
  return settings.enabled ? databricksLakehouse(settings, tables) : undefined;
}
