/**
 * Azure built-in roles, shared by the engine's grants (components/azure) and Unity Catalog's grant
 * on the landing container (components/databricks/azure.ts). No provider SDK is imported here, so
 * the Databricks part can use it without loading the Azure provider.
 */

/** Built-in role definition ids (the same in every tenant). */
export const ROLES = {
  storageBlobDataContributor: "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
  acrPull: "7f951dda-4ed3-4680-a7ca-43fe172d538d",
  keyVaultSecretsUser: "4633458b-17de-408a-b874-0445c86b69e6",
} as const;

/** The subscription-scoped ARM ID of a built-in role definition. */
export function roleDefinitionId(subscriptionId: string, roleGuid: string): string {
  return `/subscriptions/${subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${roleGuid}`;
}
