/**
 * The worker thread that transcodes a snapshot's COPY rows (see snapshot-transcoder.ts): input
 * blocks in, record blocks out, both as transferred ArrayBuffers, one range at a time.
 */
import { parentPort } from "node:worker_threads";
import { CopyBlockTranscoder, failureOf } from "./decoding/copy-block";
import type { ToWorker, FromWorker } from "./snapshot-transcoder";

const port = parentPort;
if (!port) throw new Error("snapshot-transcode-worker runs as a worker thread (new Worker), not on its own");
const post = (msg: FromWorker, transfer?: ArrayBuffer[]) => port.postMessage(msg, transfer);

let current: CopyBlockTranscoder | undefined;
let failed = false;
port.on("message", (msg: ToWorker) => {
  let consumed: ArrayBuffer | undefined;
  try {
    if (msg.type === "begin") {
      failed = false;
      current = new CopyBlockTranscoder(msg.spec, (block) => {
        const data = block.data.buffer as ArrayBuffer;
        const ends = block.ends.buffer as ArrayBuffer;
        post({ type: "records", data, length: block.data.length, ends, count: block.count, firstSeq: block.firstSeq }, [data, ends]);
      });
    } else if (msg.type === "data") {
      // After a failure the rest of the range is dropped (the main thread is stopping the COPY).
      if (!failed && current) current.push(Buffer.from(msg.data, msg.offset, msg.length));
      // The transcoder keeps nothing of a block once it returned (a row split across blocks is copied): it goes back to be used again.
      consumed = msg.data;
    } else if (!failed && current) {
      current.end();
      post({ type: "done", rows: current.rows });
      current = undefined;
    }
  } catch (err) {
    failed = true;
    post({ type: "error", failure: failureOf(err) });
  } finally {
    if (msg.type === "data") post({ type: "consumed", data: consumed }, consumed ? [consumed] : undefined);
  }
});
