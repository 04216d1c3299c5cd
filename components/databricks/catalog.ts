/**
 * The Unity Catalog side: the external location that exposes the landing URL through the storage
 * credential, the catalog and the bronze/silver/gold schemas (created unless configured as
 * existing), the managed volume that holds the streams' checkpoints and schemas, and the grants
 * the job's principal and the readers need — nothing broader.
 */
import * as pulumi from "@pulumi/pulumi";
import * as databricks from "@pulumi/databricks";
import { DatabricksSettings } from "./settings";
import { ucObjectName } from "./naming";

export interface LakehouseCatalogArgs {
  /** The landing URL (the engine's SINK_URL). */
  landingUrl: pulumi.Input<string>;
  /** The storage credential that reaches it. */
  credentialName: pulumi.Input<string>;
  /** Cloud-side grants that must exist before Databricks validates the location. */
  accessGranted: pulumi.Resource[];
  settings: DatabricksSettings;
  namePrefix: string;
}

/** The managed volume (in the bronze schema) that holds every stream's checkpoint and inferred schema. */
export const CHECKPOINT_VOLUME = "cdc_checkpoints";

export class LakehouseCatalog extends pulumi.ComponentResource {
  readonly externalLocationName: pulumi.Output<string>;
  readonly catalogName: pulumi.Output<string>;
  readonly bronzeSchema: pulumi.Output<string>;
  readonly silverSchema: pulumi.Output<string>;
  readonly goldSchema: pulumi.Output<string>;
  /** /Volumes/<catalog>/<bronze>/cdc_checkpoints */
  readonly checkpointRoot: pulumi.Output<string>;

  constructor(name: string, args: LakehouseCatalogArgs, opts?: pulumi.ComponentResourceOptions) {
    super("postgres-cdc-multicloud:databricks:LakehouseCatalog", name, {}, opts);
    const { settings } = args;

    const location = new databricks.ExternalLocation(
      `${name}-landing`,
      {
        name: ucObjectName(args.namePrefix, "landing"),
        url: args.landingUrl,
        credentialName: args.credentialName,
        comment: "postgres-cdc-multicloud: CDC landing zone (NDJSON written by the engine)",
      },
      { parent: this, dependsOn: args.accessGranted },
    );

    const catalogName: pulumi.Output<string> = settings.catalog.create
      ? new databricks.Catalog(
          `${name}-catalog`,
          {
            name: settings.catalog.name,
            comment: "postgres-cdc-multicloud: change data captured from PostgreSQL",
            ...(settings.catalog.storageRoot ? { storageRoot: settings.catalog.storageRoot } : {}),
          },
          { parent: this },
        ).name
      : pulumi.output(settings.catalog.name);

    const layers = { bronze: settings.schemas.bronze, silver: settings.schemas.silver, gold: settings.schemas.gold };
    const schema = (layer: keyof typeof layers): pulumi.Output<string> =>
      settings.schemas.create
        ? new databricks.Schema(
            `${name}-${layer}`,
            { catalogName, name: layers[layer], comment: `postgres-cdc-multicloud: ${layer} layer` },
            { parent: this },
          ).name
        : pulumi.output(layers[layer]);
    const bronze = schema("bronze");
    const silver = schema("silver");
    const gold = schema("gold");

    const volume = new databricks.Volume(
      `${name}-checkpoints`,
      {
        catalogName,
        schemaName: bronze,
        name: CHECKPOINT_VOLUME,
        volumeType: "MANAGED",
        comment: "postgres-cdc-multicloud: Auto Loader schemas and streaming checkpoints (deleting it restarts ingestion from scratch)",
      },
      { parent: this },
    );

    // The job's principal, when it is not the deploying identity (which owns everything above).
    if (settings.runAs) {
      const principal = settings.runAs;
      const grant = (key: string, securable: Omit<databricks.GrantArgs, "principal" | "privileges">, privileges: string[]) =>
        new databricks.Grant(`${name}-run-as-${key}`, { ...securable, principal, privileges }, { parent: this });
      grant("landing", { externalLocation: location.name }, ["READ_FILES"]);
      grant("catalog", { catalog: catalogName }, ["USE_CATALOG"]);
      for (const [layer, schemaName] of [["bronze", bronze], ["silver", silver], ["gold", gold]] as const) {
        grant(layer, { schema: pulumi.interpolate`${catalogName}.${schemaName}` }, ["USE_SCHEMA", "CREATE_TABLE", "SELECT", "MODIFY"]);
      }
      grant("checkpoints", { volume: pulumi.interpolate`${volume.catalogName}.${volume.schemaName}.${volume.name}` }, ["READ_VOLUME", "WRITE_VOLUME"]);
    }
    // Readers see the curated layers only (not the raw landing files, not bronze).
    settings.readers.forEach((group, i) => {
      new databricks.Grant(`${name}-reader-${i}-catalog`, { catalog: catalogName, principal: group, privileges: ["USE_CATALOG"] }, { parent: this });
      for (const [layer, schemaName] of [["silver", silver], ["gold", gold]] as const) {
        new databricks.Grant(
          `${name}-reader-${i}-${layer}`,
          { schema: pulumi.interpolate`${catalogName}.${schemaName}`, principal: group, privileges: ["USE_SCHEMA", "SELECT"] },
          { parent: this },
        );
      }
    });

    this.externalLocationName = location.name;
    this.catalogName = catalogName;
    this.bronzeSchema = bronze;
    this.silverSchema = silver;
    this.goldSchema = gold;
    this.checkpointRoot = pulumi.interpolate`/Volumes/${volume.catalogName}/${volume.schemaName}/${volume.name}`;
    this.registerOutputs({
      externalLocationName: this.externalLocationName,
      catalogName: this.catalogName,
      checkpointRoot: this.checkpointRoot,
    });
  }
}
