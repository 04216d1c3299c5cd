/**
 * The abfss:// sink against Azurite (Microsoft's storage emulator, from npm), started by the test and
 * reached through AZURE_STORAGE_CONNECTION_STRING, as an emulator must be. Azurite checks SharedKey
 * and SAS signatures and permissions, and transactional MD5s, like the service.
 */
import assert from "node:assert/strict";
import { BlobServiceClient, ContainerSASPermissions, StorageSharedKeyCredential, generateBlobSASQueryParameters } from "@azure/storage-blob";
import { openSink, recordingLogger, sinkContract, type ContractTarget } from "./support/contract";
import { AZURITE_ACCOUNT, AZURITE_KEY, azuriteConnectionString, startAzurite, type StorageServer } from "./support/emulators";

describe("sinks: abfss:// against Azurite", function () {
  this.timeout(60_000);
  let server: StorageServer;

  before(async () => {
    server = await startAzurite();
    const service = BlobServiceClient.fromConnectionString(azuriteConnectionString(server.port));
    await service.getContainerClient("landing").create();
  });
  after(async () => {
    await server?.dispose();
  });

  const target: ContractTarget = {
    server: () => server,
    url: "abfss://landing@cdcdata.dfs.core.windows.net/cdc/prod",
    rootUrl: "abfss://landing@cdcdata.dfs.core.windows.net/",
    prefix: "cdc/prod",
    env: (port) => ({ AZURE_STORAGE_CONNECTION_STRING: azuriteConnectionString(port) }),
  };
  sinkContract(target);

  it("names the missing data-plane permission when the identity may only read (AuthorizationPermissionMismatch)", async () => {
    // A read-only SAS for the container: Azurite answers writes with 403 AuthorizationPermissionMismatch,
    // as the service does for an identity without "Storage Blob Data Contributor".
    const sas = generateBlobSASQueryParameters(
      { containerName: "landing", permissions: ContainerSASPermissions.parse("r"), expiresOn: new Date(Date.now() + 3600_000) },
      new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
    ).toString();
    const logger = recordingLogger();
    const sink = await openSink(
      { ...target, env: (port) => ({ AZURE_STORAGE_CONNECTION_STRING: `BlobEndpoint=http://127.0.0.1:${port}/${AZURITE_ACCOUNT};SharedAccessSignature=${sas}` }) },
      target.url,
      server.port,
      logger,
    );
    await assert.rejects(sink.put("cdc.public.t/date=2026-11-21/hour=00/x.ndjson", Buffer.from("{}\n")), {
      name: "SinkPermanentError",
      message:
        'sink abfss://landing@cdcdata.dfs.core.windows.net/cdc/prod: Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write denied on container landing of account cdcdata (blob cdc/prod/cdc.public.t/date=2026-11-21/hour=00/x.ndjson, AuthorizationPermissionMismatch): assign the engine\'s managed identity the "Storage Blob Data Contributor" role on the container',
    });
    assert.equal(logger.warnings.length, 0, "a permanent error is not retried");
    await sink.close();
  });

  it("rejects a wrong account key at once (Azurite answers AuthorizationFailure)", async () => {
    const sink = await openSink({ ...target, env: (port) => ({ AZURE_STORAGE_CONNECTION_STRING: azuriteConnectionString(port, Buffer.alloc(64, 7).toString("base64")) }) }, target.url, server.port);
    await assert.rejects(sink.put("cdc.public.t/x.ndjson", Buffer.from("{}\n")), (err: Error) => {
      assert.equal(err.name, "SinkPermanentError");
      assert.equal(
        err.message,
        "sink abfss://landing@cdcdata.dfs.core.windows.net/cdc/prod: Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write not authorized on container landing of account cdcdata (blob cdc/prod/cdc.public.t/x.ndjson, AuthorizationFailure): check the account key or SAS in AZURE_STORAGE_CONNECTION_STRING",
      );
      return true;
    });
    await sink.close();
  });

  it("names a missing container", async () => {
    const sink = await openSink(target, "abfss://absent@cdcdata.dfs.core.windows.net/cdc", server.port);
    await assert.rejects(sink.put("cdc.public.t/x.ndjson", Buffer.from("{}\n")), {
      name: "SinkPermanentError",
      message: `sink abfss://absent@cdcdata.dfs.core.windows.net/cdc: container absent does not exist in http://127.0.0.1:${server.port}/devstoreaccount1: create it or fix SINK_URL`,
    });
    await sink.close();
  });

  it("without a connection string uses DefaultAzureCredential against the account's blob endpoint", async () => {
    const { AzureBlobSink } = await import("../../container/src/sink/azure.js");
    const sink = new AzureBlobSink({ url: target.url, account: "cdcdata", container: "landing", prefix: "cdc" });
    assert.equal((sink as unknown as { endpoint: string }).endpoint, "https://cdcdata.blob.core.windows.net/");
    await sink.close();
  });
});
