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
  // https://learn.microsoft.com/azure/role-based-access-control/built-in-roles (Analytics)
  eventHubsDataSender: "2b629674-e913-4c01-ae53-ef4638d8f975",
  eventHubsDataReceiver: "a638d3c7-ab3a-418d-83e6-5f17a39d4fde",
} as const;

/** The subscription-scoped ARM ID of a built-in role definition. */
export function roleDefinitionId(subscriptionId: string, roleGuid: string): string {
  return `/subscriptions/${subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${roleGuid}`;
}
