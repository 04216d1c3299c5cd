/**
 * Starts the suite's slow one-time setups — each built or installed once into .cache/ and reused —
 * as soon as mocha loads, in the background and at idle CPU priority (priority.ts: on CPU time no
 * test wants), so that they overlap the PostgreSQL tests (which mostly wait) instead of adding
 * their minutes to a fresh clone's run, and without slowing those tests down.
 * The tests that need one await the same work (each ensure* runs once per process, or takes a
 * lock); a setup that fails is reported by the tests that need it, not here. `npm test` loads it
 * (package.json); a run of single test files does not, so it builds only what those files need.
 */
import { ensureSparkEnv } from "../../lakehouse/src/spark/env";
import { ensureFakeGcsServer } from "../sinks/support/conditional-servers";
import { kafkaJars } from "../sinks/support/kafka-broker";
import { ensureMoto } from "./moto";
import { runSetupsInBackground } from "./priority";
import { embeddedPostgresEntry, VERSION_TEST_MAJORS } from "./postgres-majors";

const otherPostgresMajors = () => Promise.all(VERSION_TEST_MAJORS.map((major) => embeddedPostgresEntry(major)));

runSetupsInBackground();
for (const setup of [otherPostgresMajors, ensureFakeGcsServer, ensureMoto, kafkaJars, () => ensureSparkEnv({ idlePriority: true })]) setup().catch(() => undefined);
