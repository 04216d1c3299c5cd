/**
 * The s3:// sink against s3rver, a real S3-compatible server from npm (SigV4 signatures, Content-MD5
 * checks, path-style addressing through S3_ENDPOINT), started by the test.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { SinkPermanentError } from "../../container/src/sink";
import { freePort } from "../support/postgres";
import { probeSink } from "../../container/src/sink";
import { openSink, recordingLogger, sinkConfig, sinkContract, type ContractTarget } from "./support/contract";
import { S3RVER_CREDENTIALS, startS3rver, type StorageServer, useS3rverCredentials } from "./support/emulators";

describe("sinks: s3:// against s3rver", function () {
  this.timeout(60_000);
  let server: StorageServer;
  let restoreEnv: (() => void) | undefined;

  before(async () => {
    restoreEnv = useS3rverCredentials();
    server = await startS3rver(["landing"]);
  });
  after(async () => {
    await server?.dispose();
    restoreEnv?.();
  });

  const target: ContractTarget = {
    server: () => server,
    url: "s3://landing/cdc/prod",
    rootUrl: "s3://landing",
    prefix: "cdc/prod",
    env: (port) => ({ S3_ENDPOINT: `http://127.0.0.1:${port}` }),
  };
  sinkContract(target);

  it("rejects unknown credentials at once with one permanent error naming the URL", async () => {
    // s3rver checks the access key id (it does not verify SigV4 signatures themselves).
    const logger = recordingLogger();
    process.env.AWS_ACCESS_KEY_ID = "AKIAUNKNOWNKEY000000";
    try {
      const sink = await openSink(target, target.url, server.port, logger);
      await assert.rejects(sink.put("cdc.public.t/date=2026-11-21/hour=00/x.ndjson", Buffer.from("{}\n")), (err: Error) => {
        assert.ok(err instanceof SinkPermanentError, String(err));
        assert.match(err.message, /^sink s3:\/\/landing\/cdc\/prod: the AWS credentials were rejected \(InvalidAccessKeyId\): run with a task role/);
        return true;
      });
      assert.equal(logger.warnings.length, 0, "a permanent error is not retried");
      await sink.close();
    } finally {
      process.env.AWS_ACCESS_KEY_ID = S3RVER_CREDENTIALS.AWS_ACCESS_KEY_ID;
    }
  });

  it("names a missing bucket", async () => {
    const sink = await openSink(target, "s3://no-such-bucket/landing", server.port);
    await assert.rejects(sink.put("cdc.public.t/x.ndjson", Buffer.from("{}\n")), {
      name: "SinkPermanentError",
      message: `sink s3://no-such-bucket/landing: bucket no-such-bucket does not exist at http://127.0.0.1:${server.port}: create it or fix SINK_URL`,
    });
    await sink.close();
  });

  describe("IAM denial (s3rver has no IAM: a stand-in endpoint answers exactly as S3 does for a denied s3:PutObject)", () => {
    let denier: Server;
    let port: number;
    before(async () => {
      port = await freePort();
      denier = createServer((req, res) => {
        req.resume();
        req.on("end", () => {
          res.writeHead(403, { "content-type": "application/xml", "x-amz-request-id": "STANDIN" });
          res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>User: arn:aws:sts::123456789012:assumed-role/cdc-task/abc is not authorized to perform: s3:PutObject on resource: "arn:aws:s3:::landing/cdc/prod/x" because no identity-based policy allows the s3:PutObject action</Message><RequestId>STANDIN</RequestId></Error>`);
        });
      });
      await new Promise<void>((r) => denier.listen(port, "127.0.0.1", () => r()));
    });
    after(() => new Promise<void>((r) => denier.close(() => r())));

    it("gives the one clear message naming the URL, the action and the fix", async () => {
      const logger = recordingLogger();
      const sink = await openSink(target, target.url, port, logger);
      await assert.rejects(sink.put("cdc.public.t/date=2026-11-21/hour=00/x.ndjson", Buffer.from("{}\n")), {
        name: "SinkPermanentError",
        message:
          "sink s3://landing/cdc/prod: s3:PutObject denied on s3://landing/cdc/prod/* (arn:aws:s3:::landing/cdc/prod/*) for key cdc/prod/cdc.public.t/date=2026-11-21/hour=00/x.ndjson: grant it to the task role",
      });
      assert.equal(logger.warnings.length, 0);
      await sink.close();
    });

    it("makes doctor's sink check fail with the same message", async () => {
      const probe = await probeSink(sinkConfig(target.url, target.env(port)));
      assert.equal(probe.ok, false);
      assert.match(probe.message, /^sink s3:\/\/landing\/cdc\/prod: s3:PutObject denied on s3:\/\/landing\/cdc\/prod\/\* \(arn:aws:s3:::landing\/cdc\/prod\/\*\) for key cdc\/prod\/_cdc_probe\/.+: grant it to the task role$/);
    });
  });
});
