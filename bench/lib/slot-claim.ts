/**
 * The bench creates its slots before it generates the backlog (so every consumer drains the same
 * WAL), but the engine only streams from a slot its sink records having created (slot ownership,
 * docs/engine.md "Slot ownership"). Writing that record into a fresh file:// landing zone is what
 * the engine would have written had it created the slot itself.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

export async function claimSlotForLanding(landingDir: string, slot: string, database: string): Promise<void> {
  await mkdir(join(landingDir, "_cdc_state"), { recursive: true });
  const state = { slotOwner: { slot, database, status: "created", since: new Date().toISOString() } };
  await writeFile(join(landingDir, "_cdc_state", `${slot}.json`), JSON.stringify(state, null, 1));
}
