/** A thin async wrapper over @duckdb/node-api: one database file, one connection. */
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";

export type Row = Record<string, unknown>;

export class Duck {
  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly connection: DuckDBConnection,
    readonly path: string,
  ) {}

  static async open(path: string): Promise<Duck> {
    let instance: DuckDBInstance;
    try {
      instance = await DuckDBInstance.create(path);
    } catch (err) {
      const message = (err as Error).message;
      if (/lock/i.test(message)) throw new Error(`DuckDB file ${path} is in use by another process (${message.split("\n")[0]}); stop it or use another --db file`);
      throw new Error(`cannot open DuckDB file ${path}: ${message.split("\n")[0]}`);
    }
    const connection = await instance.connect();
    const duck = new Duck(instance, connection, path);
    // Landing timestamps are UTC; so are the UTC days of gold.daily_sales.
    await duck.run("SET TimeZone = 'UTC'");
    return duck;
  }

  async run(sql: string): Promise<void> {
    await this.connection.run(sql);
  }

  /** Rows as JSON-friendly objects (BIGINT and DECIMAL as strings, timestamps as text). */
  async all<T = Row>(sql: string): Promise<T[]> {
    const reader = await this.connection.runAndReadAll(sql);
    return reader.getRowObjectsJson() as T[];
  }

  /** Column names and rows of a query, values as JSON-friendly data. */
  async table(sql: string): Promise<{ columns: string[]; rows: unknown[][] }> {
    const reader = await this.connection.runAndReadAll(sql);
    return { columns: reader.columnNames(), rows: reader.getRowsJson() as unknown[][] };
  }

  async transaction<T>(work: () => Promise<T>): Promise<T> {
    await this.run("BEGIN TRANSACTION");
    try {
      const result = await work();
      await this.run("COMMIT");
      return result;
    } catch (err) {
      await this.run("ROLLBACK").catch(() => undefined);
      throw err;
    }
  }

  close(): void {
    this.connection.closeSync();
    this.instance.closeSync();
  }
}

export const sqlString = (value: string): string => `'${value.replace(/'/g, "''")}'`;
