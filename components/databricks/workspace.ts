/**
 * Uploads the notebooks and the shared medallion SQL from this repository into one workspace
 * folder. The notebooks are Databricks notebooks; `medallion_sql.py` and `sql/**.sql` are
 * workspace files next to them, so the notebooks import and read exactly the files the local
 * lakehouse tests run. Each upload carries the file's MD5: an unchanged file is not re-uploaded,
 * a changed one is.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as databricks from "@pulumi/databricks";

/** The repository root (this file is components/databricks/workspace.ts). */
export const REPO_ROOT = path.resolve(__dirname, "..", "..");
export const NOTEBOOKS_DIR = path.join(REPO_ROOT, "notebooks");

/** The job's notebooks, in task order. */
export const NOTEBOOKS = {
  bronze: "01_bronze_ingestion",
  silver: "02_silver_merge",
  gold: "03_gold_aggregation",
} as const;
export type Layer = keyof typeof NOTEBOOKS;

/** A repository file and where it goes in the workspace folder. */
export interface UploadedFile {
  kind: "notebook" | "file";
  /** Absolute path on this machine. */
  localPath: string;
  /** Path relative to the workspace folder (notebooks drop their .py extension). */
  relativePath: string;
  md5: string;
}

function md5(file: string): string {
  return crypto.createHash("md5").update(fs.readFileSync(file)).digest("hex");
}

function listSqlFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".sql"))
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

/** Everything the job needs in the workspace: the three notebooks, medallion_sql.py and notebooks/sql/**.sql. */
export function medallionFiles(notebooksDir = NOTEBOOKS_DIR): UploadedFile[] {
  const files: UploadedFile[] = [];
  for (const name of Object.values(NOTEBOOKS)) {
    const localPath = path.join(notebooksDir, `${name}.py`);
    files.push({ kind: "notebook", localPath, relativePath: name, md5: md5(localPath) });
  }
  const renderer = path.join(notebooksDir, "medallion_sql.py");
  if (!fs.existsSync(renderer)) throw new Error(`${renderer} is missing: the notebooks import it to render the shared medallion SQL`);
  files.push({ kind: "file", localPath: renderer, relativePath: "medallion_sql.py", md5: md5(renderer) });
  const sqlFiles = listSqlFiles(path.join(notebooksDir, "sql"));
  if (sqlFiles.length === 0) throw new Error(`${path.join(notebooksDir, "sql")} has no .sql files: the medallion SQL is missing`);
  for (const file of sqlFiles) {
    files.push({ kind: "file", localPath: file, relativePath: path.relative(notebooksDir, file).split(path.sep).join("/"), md5: md5(file) });
  }
  return files;
}

export interface MedallionWorkspaceArgs {
  /** Absolute workspace folder, e.g. /Shared/postgres-cdc-multicloud/prod. */
  folder: string;
}

export class MedallionWorkspace extends pulumi.ComponentResource {
  /** Workspace path of each layer's notebook. */
  readonly notebookPaths: Record<Layer, pulumi.Output<string>>;
  /** The folder the notebooks import medallion_sql from. */
  readonly folder: string;

  constructor(name: string, args: MedallionWorkspaceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("postgres-cdc-multicloud:databricks:MedallionWorkspace", name, {}, opts);
    const paths: Partial<Record<string, pulumi.Output<string>>> = {};
    for (const file of medallionFiles()) {
      // Relative to the project directory (where `pulumi` runs), so the state does not depend on
      // where the repository is checked out.
      const source = path.relative(process.cwd(), file.localPath) || file.localPath;
      const resourceName = `${name}-${file.relativePath.replace(/[^A-Za-z0-9_-]+/g, "-")}`;
      const workspacePath = `${args.folder}/${file.relativePath}`;
      if (file.kind === "notebook") {
        const nb = new databricks.Notebook(resourceName, { path: workspacePath, source, md5: file.md5, language: "PYTHON" }, { parent: this });
        paths[file.relativePath] = nb.path;
      } else {
        new databricks.WorkspaceFile(resourceName, { path: workspacePath, source, md5: file.md5 }, { parent: this });
      }
    }
    this.folder = args.folder;
    this.notebookPaths = {
      bronze: paths[NOTEBOOKS.bronze]!,
      silver: paths[NOTEBOOKS.silver]!,
      gold: paths[NOTEBOOKS.gold]!,
    };
    this.registerOutputs({ folder: this.folder });
  }
}
