/**
 * The demo's embedded PostgreSQL in a process of its own. The demo starts it in a separate process
 * group, so the Ctrl-C a terminal sends to the demo's group does not shut the server down before
 * the demo has stopped the workload and the engine in order. It prints one JSON line
 * ({host, port, user, password, database, dataDir}) once the server accepts connections, and stops
 * the server (removing its data) on SIGTERM/SIGINT — or when its stdin closes, i.e. when the demo
 * is gone, however it ended.
 */
import { startEmbeddedPostgres, type DemoPostgres } from "./postgres";

async function serve(): Promise<void> {
  let server: DemoPostgres | undefined;
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await server?.stop().catch(() => undefined);
    process.exit(code);
  };
  process.on("SIGTERM", () => void stop(0));
  process.on("SIGINT", () => void stop(0));
  process.stdin.on("end", () => void stop(0));
  process.stdin.on("close", () => void stop(0));
  process.stdin.resume();
  try {
    server = await startEmbeddedPostgres();
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
  if (stopping) return void (await server.stop());
  const { host, port, user, password, database, dataDir } = server;
  process.stdout.write(`${JSON.stringify({ host, port, user, password, database, dataDir })}\n`);
}

void serve();
