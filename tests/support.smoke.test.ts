import assert from "node:assert/strict";
import { startPostgres, type TestPostgres } from "./support/postgres";

describe("test support: embedded PostgreSQL", () => {
  let pg: TestPostgres;
  before(async () => (pg = await startPostgres()));
  after(async () => pg?.stop());

  it("runs with wal_level=logical", async () => {
    const [row] = await pg.query<{ wal_level: string }>("SHOW wal_level");
    assert.equal(row.wal_level, "logical");
  });
});
