/** The landing storage and cloud identities the harness pretends the platform created. */
export const ACCOUNT = "123456789012";
export const SUB = "00000000-0000-0000-0000-000000000001";
export const LANDING = {
  aws: { bucket: "cdc-prod-landing-1a2b3c", prefix: "landing" },
  azure: { rg: "cdc-prod-rg", account: "cdcprodlanding1a2b", container: "landing", prefix: "landing" },
  gcp: { bucket: "cdc-prod-landing-1a2b3c", prefix: "landing" },
};
export const CONTAINER_ID = `/subscriptions/${SUB}/resourceGroups/${LANDING.azure.rg}/providers/Microsoft.Storage/storageAccounts/${LANDING.azure.account}/blobServices/default/containers/${LANDING.azure.container}`;
export const UC_MASTER = "arn:aws:iam::414351767826:role/unity-catalog-prod-UCMasterRole-14S5ZJVKOTYTL";
export const KMS_KEY_ARN = `arn:aws:kms:eu-west-1:${ACCOUNT}:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0`;
