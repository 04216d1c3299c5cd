/**
 * Mocha's root hooks for every run (.mocharc.json requires this file). It is a Root Hook Plugin,
 * so they also hold in parallel mode, where each test file runs under a fresh root suite in a
 * worker process (a root-level hook registered when a module is first imported would run after
 * that worker's first file only). What a test leaves running for later files (the shared Spark
 * driver) is stopped after the run's last test, in parallel mode after each file.
 */
const atEnd = new Set<() => Promise<void>>();

/** Runs `stop` once after the run's (in parallel mode: the file's) last test, unless it was taken back; the last registered runs first. */
export function stopAfterRun(stop: () => Promise<void>): () => void {
  atEnd.add(stop);
  return () => atEnd.delete(stop);
}

export const mochaHooks = {
  async afterAll(this: Mocha.Context) {
    this.timeout(120_000);
    // Last registered first: what started later may live inside what started earlier (Spark's warehouse in the run's temp dir).
    const stops = [...atEnd].reverse();
    atEnd.clear();
    for (const stop of stops) await stop();
  },
};
