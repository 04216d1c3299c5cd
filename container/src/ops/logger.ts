/**
 * Structured JSON logs (one object per line on stdout), the format every cloud's log service
 * ingests as-is. The database password never reaches the output: known fields are redacted, and
 * as a last line of defence any occurrence of its literal value (e.g. inside an error message
 * echoing a connection string) is masked in the serialized line.
 */
import pino, { type Logger, type DestinationStream, type LevelWithSilent } from "pino";

export type { Logger } from "pino";

export interface LoggerOptions {
  level: LevelWithSilent;
  /** PG_PASSWORD (and any other secret) to mask wherever it would appear. */
  secrets?: (string | undefined)[];
  /** Where lines go; stdout (synchronously, so nothing is lost on exit) by default. */
  destination?: DestinationStream;
}

const REDACTED = "[redacted]";

/** Field paths that may carry credentials in objects the engine or its libraries log. */
const REDACT_PATHS = [
  "password",
  "*.password",
  "pg.password",
  "config.pg.password",
  "PG_PASSWORD",
  "*.PG_PASSWORD",
  "env.PG_PASSWORD",
  "connectionString",
  "*.connectionString",
  "AZURE_STORAGE_CONNECTION_STRING",
  "*.AZURE_STORAGE_CONNECTION_STRING",
];

/** Secrets shorter than this are not masked by value: it would shred ordinary words in the logs. */
const MIN_MASKED_SECRET_LENGTH = 4;

export function createLogger(options: LoggerOptions): Logger {
  const destination = options.destination ?? pino.destination({ dest: 1, sync: true });
  const secrets = (options.secrets ?? [])
    .filter((s): s is string => typeof s === "string" && s.length >= MIN_MASKED_SECRET_LENGTH)
    // Match the secret as it appears inside a JSON string (quotes and backslashes escaped).
    .map((s) => JSON.stringify(s).slice(1, -1));
  const stream: DestinationStream =
    secrets.length === 0
      ? destination
      : {
          write(line: string) {
            let out = line;
            for (const secret of secrets) out = out.split(secret).join(REDACTED);
            destination.write(out);
          },
        };
  return pino(
    {
      level: options.level,
      base: { service: "cdc-engine" },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Level names ("info") rather than numbers: CloudWatch, Azure Monitor and Cloud Logging filter on them.
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: REDACTED },
    },
    stream,
  );
}
