/**
 * Everything the benchmark starts (PostgreSQL, the engine, pg_recvlogical, temp directories)
 * registers how to undo itself here, so a failure or Ctrl-C never leaves a server or files behind.
 */
import type { ChildProcess } from "node:child_process";

type Undo = () => Promise<void> | void;

const undos: { name: string; undo: Undo }[] = [];
let running: Promise<void> | undefined;

/** Registers an undo step; returns a function that runs it now (and unregisters it). */
export function onCleanup(name: string, undo: Undo): () => Promise<void> {
  const entry = { name, undo };
  undos.push(entry);
  return async () => {
    const i = undos.indexOf(entry);
    if (i < 0) return;
    undos.splice(i, 1);
    await entry.undo();
  };
}

/** Runs every registered undo step, newest first; errors are reported, never thrown. */
export function cleanupAll(): Promise<void> {
  running ??= (async () => {
    while (undos.length > 0) {
      const { name, undo } = undos.pop()!;
      try {
        await undo();
      } catch (err) {
        process.stderr.write(`bench: cleanup of ${name} failed: ${String(err)}\n`);
      }
    }
  })();
  return running;
}

/** Sends SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

let installed = false;

/** Runs the cleanup on Ctrl-C, SIGTERM and crashes, then exits with a failure code. */
export function installSignalHandlers(): void {
  if (installed) return;
  installed = true;
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal} received, cleaning up…\n`);
      void cleanupAll().finally(() => process.exit(130));
    });
  }
  process.on("uncaughtException", (err) => {
    process.stderr.write(`bench: uncaught ${err.stack ?? String(err)}\n`);
    void cleanupAll().finally(() => process.exit(1));
  });
  process.on("unhandledRejection", (err) => {
    process.stderr.write(`bench: unhandled rejection ${(err as Error)?.stack ?? String(err)}\n`);
    void cleanupAll().finally(() => process.exit(1));
  });
}
