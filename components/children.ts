/**
 * Pulumi names of a platform's children. They start with the platform's own name, so several
 * platforms fit in one stack; before that they were fixed words ("landing", "engine", …).
 */
import type * as pulumi from "@pulumi/pulumi";

/**
 * Name and options for the child `legacy` of the platform `platform`: `<platform>-<legacy>`, aliased
 * to the old fixed name so existing stacks keep their resources (Pulumi derives the aliases of the
 * grandchildren, whose names start with the child's, from this one).
 */
export function childOf(parent: pulumi.Resource, platform: string, legacy: string): { name: string; opts: pulumi.ComponentResourceOptions } {
  return { name: `${platform}-${legacy}`, opts: { parent, aliases: [{ name: legacy }] } };
}

/**
 * Name and options of a per-engine child: the single-pipeline form's as before (childOf), a
 * pipeline's `<platform>-<legacy>-<pipeline>` (new resources, nothing to alias).
 */
export function engineChildOf(parent: pulumi.Resource, platform: string, legacy: string, pipeline: string | undefined): { name: string; opts: pulumi.ComponentResourceOptions } {
  return pipeline ? { name: `${platform}-${legacy}-${pipeline}`, opts: { parent } } : childOf(parent, platform, legacy);
}
