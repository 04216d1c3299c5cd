/** The grant-propagation wait is shared with the engine's targets; see components/propagation.ts. */
export * from "../propagation";
