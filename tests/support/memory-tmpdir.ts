/**
 * `npm test` keeps the suite's temporary files in memory: TMPDIR points to a directory of its own
 * on /dev/shm (a tmpfs) when the machine has one with room, for this process and every process it
 * starts (engines, PostgreSQL, Kafka, pip's builds). The engine fsyncs every landing object, its
 * directory and its state; on a disk, each fsync commits the file system's journal together with
 * every other process's unwritten data, so while a clean clone's one-time setups write their
 * gigabytes (tests/support/prefetch.ts) the engine tests ran 3-5x slower (crash.test.ts: 14 s
 * alone, 52 s beside a `dd` writer on the same disk, 12.5 s with its files on tmpfs). The fsyncs
 * still happen; they are just cheap. The directory goes with the run (root-hooks.ts).
 * CDC_TEST_TMPDIR=disk keeps the machine's TMPDIR.
 */
import { chmodSync, mkdirSync, rmSync, statfsSync } from "node:fs";
import { join } from "node:path";
import { stopAfterRun } from "./root-hooks";

const SHM = "/dev/shm";
/** The most the suite's temporary files were seen to need at once is well below this. */
const MIN_FREE_BYTES = 8 * 1024 ** 3;
const TMPFS_MAGIC = 0x01021994;

function useMemory(): string | undefined {
  if (process.env.CDC_TEST_TMPDIR === "disk") return undefined;
  try {
    const fs = statfsSync(SHM);
    if (fs.type !== TMPFS_MAGIC || fs.bavail * fs.bsize < MIN_FREE_BYTES) return undefined;
    const dir = join(SHM, `cdc-tests-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    // As /tmp: PostgreSQL runs as its own user when the tests run as root.
    chmodSync(dir, 0o1777);
    return dir;
  } catch {
    return undefined;
  }
}

const dir = useMemory();
if (dir !== undefined) {
  process.env.TMPDIR = dir;
  stopAfterRun(async () => rmSync(dir, { recursive: true, force: true }));
}
