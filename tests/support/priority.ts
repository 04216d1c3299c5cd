/**
 * The priority of the suite's one-time setups (installs and builds into .cache/). While
 * tests/support/prefetch.ts runs them beside the tests, they run under SCHED_IDLE (`chrt --idle
 * 0`): only on CPU time no test wants. `nice` is not enough: measured on the 2-core CI machine,
 * crash.test.ts took 14 s alone, 50 s beside two `nice -n 15` CPU hogs and 16 s beside two
 * SCHED_IDLE ones; a clean clone's run (Go build, pip, Maven) slowed the engine tests 3-4x.
 */
import { atIdlePriority } from "../../lakehouse/src/spark/env";

let background = false;

/** From now on this process's setups run in the background (prefetch.ts calls it before starting them). */
export function runSetupsInBackground(): void {
  background = true;
}

/** `command args` as a setup runs it: at idle CPU priority while setups run in the background. */
export function setupCommand(command: string, args: string[]): [string, string[]] {
  return background ? atIdlePriority(command, args) : [command, args];
}
