/**
 * Replays a Dockerfile without a Docker engine: parses its instructions, builds the context through
 * its .dockerignore, and executes each stage's COPY and RUN steps in a directory standing for that
 * stage's root filesystem (absolute paths inside the image map to paths under it). Independent
 * stages run concurrently, as BuildKit runs them. Only what the project's Dockerfile uses is
 * supported; anything else fails loudly rather than being skipped.
 */
import { spawn } from "node:child_process";
import { cp, mkdir, readdir, stat } from "node:fs/promises";
import { dirname, join } from "node:path";

export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

export interface Stage {
  name: string;
  image: string;
  instructions: Instruction[];
}

export interface ParsedDockerfile {
  globalArgs: Record<string, string>;
  stages: Stage[];
}

export function parseDockerfile(text: string): ParsedDockerfile {
  const logical: Instruction[] = [];
  let buffer = "";
  let startLine = 0;
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\r$/, "");
    if (buffer === "" && (/^\s*#/.test(line) || line.trim() === "")) return;
    if (buffer !== "" && /^\s*#/.test(line)) return; // comment lines inside a continuation
    if (buffer === "") startLine = i + 1;
    if (/\\\s*$/.test(line)) {
      buffer += line.replace(/\\\s*$/, "") + " ";
      return;
    }
    buffer += line;
    const m = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(buffer);
    if (!m) throw new Error(`Dockerfile line ${startLine}: cannot parse ${JSON.stringify(buffer)}`);
    logical.push({ keyword: m[1].toUpperCase(), args: m[2].trim(), line: startLine });
    buffer = "";
  });
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of logical) {
    if (ins.keyword === "FROM") {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`Dockerfile line ${ins.line}: bad FROM`);
      stages.push({ name: m[2] ?? String(stages.length), image: substitute(m[1], globalArgs), instructions: [] });
    } else if (stages.length === 0) {
      if (ins.keyword !== "ARG") throw new Error(`Dockerfile line ${ins.line}: only ARG may precede FROM`);
      const [k, v] = ins.args.split("=");
      globalArgs[k] = v ?? "";
    } else {
      stages[stages.length - 1].instructions.push(ins);
    }
  }
  return { globalArgs, stages };
}

function substitute(value: string, vars: Record<string, string>): string {
  return value.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string, b: string) => vars[a ?? b] ?? "");
}

/** Docker's .dockerignore semantics for the pattern forms used here: last match wins, `!` re-includes, a match on a directory covers its contents. */
export function dockerignoreMatcher(text: string): { excluded(path: string): boolean; mayContainIncluded(dir: string): boolean } {
  const patterns = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => {
      const negate = l.startsWith("!");
      const body = (negate ? l.slice(1) : l).replace(/^\/+/, "").replace(/\/+$/, "");
      const regex = new RegExp(
        "^" +
          body
            .split(/(\*\*|\*|\?)/)
            .map((part) => (part === "**" ? ".*" : part === "*" ? "[^/]*" : part === "?" ? "[^/]" : part.replace(/[.+^${}()|[\]\\]/g, "\\$&")))
            .join("") +
          "$",
      );
      return { negate, body, regex };
    });
  const matches = (regex: RegExp, path: string) => {
    const parts = path.split("/");
    for (let i = 1; i <= parts.length; i++) if (regex.test(parts.slice(0, i).join("/"))) return true;
    return false;
  };
  return {
    excluded(path) {
      let excluded = false;
      for (const p of patterns) if (matches(p.regex, path)) excluded = !p.negate;
      return excluded;
    },
    mayContainIncluded(dir) {
      return patterns.some((p) => p.negate && (p.body.startsWith(`${dir}/`) || p.body.startsWith("*")));
    },
  };
}

/** Copies the files of `root` that the .dockerignore lets into the build context. */
export async function buildContext(root: string, dockerignore: string, into: string): Promise<string[]> {
  const matcher = dockerignoreMatcher(dockerignore);
  const copied: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(join(root, dir), { withFileTypes: true })) {
      const rel = dir ? `${dir}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (matcher.excluded(rel) && !matcher.mayContainIncluded(rel)) continue;
        await walk(rel);
      } else if (!matcher.excluded(rel)) {
        await mkdir(dirname(join(into, rel)), { recursive: true });
        await cp(join(root, rel), join(into, rel));
        copied.push(rel);
      }
    }
  };
  await walk("");
  return copied.sort();
}

export interface ReplayedImage {
  /** stage name -> directory standing for its root filesystem */
  roots: Map<string, string>;
  runtime: { root: string; workdir: string; user: string | undefined; env: Record<string, string>; entrypoint: string[]; cmd: string[] };
  /** Every RUN executed, in order, with its stage. */
  runs: { stage: string; command: string }[];
}

export interface ReplayOptions {
  context: string;
  workDir: string;
  /** Extra environment for RUN steps (e.g. npm_config_prefer_offline). */
  runEnv?: Record<string, string>;
  log?: (line: string) => void;
}

/** Builds every stage; stages run as soon as the stages they copy from are done. */
export async function replayDockerfile(parsed: ParsedDockerfile, options: ReplayOptions): Promise<ReplayedImage> {
  const roots = new Map<string, string>();
  const done = new Map<string, Promise<{ workdir: string; user: string | undefined; env: Record<string, string>; entrypoint: string[]; cmd: string[] }>>();
  const runs: { stage: string; command: string }[] = [];
  for (const stage of parsed.stages) {
    const root = join(options.workDir, stage.name);
    roots.set(stage.name, root);
    const dependsOn = stage.instructions
      .filter((i) => i.keyword === "COPY")
      .map((i) => /--from=(\S+)/.exec(i.args)?.[1])
      .filter((s): s is string => s !== undefined);
    done.set(
      stage.name,
      (async () => {
        await Promise.all(dependsOn.map((d) => done.get(d) ?? Promise.reject(new Error(`stage ${stage.name} copies from unknown stage ${d}`))));
        await mkdir(root, { recursive: true });
        let workdir = "/";
        let user: string | undefined;
        const env: Record<string, string> = {};
        let entrypoint: string[] = [];
        let cmd: string[] = [];
        const inRoot = (p: string) => join(root, p.startsWith("/") ? p : join(workdir, p));
        for (const ins of stage.instructions) {
          switch (ins.keyword) {
            case "WORKDIR":
              workdir = ins.args.startsWith("/") ? ins.args : join(workdir, ins.args);
              await mkdir(inRoot(workdir), { recursive: true });
              break;
            case "COPY": {
              const tokens = ins.args.split(/\s+/);
              const from = tokens.find((t) => t.startsWith("--from="))?.slice("--from=".length);
              const rest = tokens.filter((t) => !t.startsWith("--"));
              const dest = rest.pop()!;
              const sourceRoot = from ? roots.get(from)! : options.context;
              for (const src of rest) {
                const source = from ? join(sourceRoot, src) : join(sourceRoot, src);
                const info = await stat(source).catch(() => {
                  throw new Error(`Dockerfile line ${ins.line}: COPY source ${src} is not in the ${from ? `stage ${from}` : "build context (check the .dockerignore)"}`);
                });
                const target = inRoot(dest);
                if (info.isDirectory()) await cp(source, target, { recursive: true, verbatimSymlinks: true });
                else {
                  const file = dest.endsWith("/") || rest.length > 1 ? join(target, src.split("/").pop()!) : target;
                  await mkdir(dirname(file), { recursive: true });
                  await cp(source, file);
                }
              }
              break;
            }
            case "RUN": {
              runs.push({ stage: stage.name, command: ins.args });
              options.log?.(`[${stage.name}] RUN ${ins.args}`);
              await run(ins.args, inRoot(workdir), { ...env, ...options.runEnv });
              break;
            }
            case "ENV": {
              for (const m of ins.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[m[1]] = m[2].replace(/^"|"$/g, "");
              break;
            }
            case "USER":
              user = ins.args;
              break;
            case "ENTRYPOINT":
              entrypoint = JSON.parse(ins.args) as string[];
              break;
            case "CMD":
              cmd = JSON.parse(ins.args) as string[];
              break;
            case "VOLUME":
            case "EXPOSE":
            case "HEALTHCHECK":
            case "STOPSIGNAL":
            case "LABEL":
              break; // metadata: asserted by the test, nothing to execute
            default:
              throw new Error(`Dockerfile line ${ins.line}: the replay does not support ${ins.keyword}`);
          }
        }
        return { workdir, user, env, entrypoint, cmd };
      })(),
    );
  }
  const results = await Promise.all([...done.values()]);
  const last = parsed.stages[parsed.stages.length - 1];
  const final = results[results.length - 1];
  return { roots, runs, runtime: { root: roots.get(last.name)!, ...final } };
}

function run(command: string, cwd: string, env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-ec", command], { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => (output += String(d)));
    child.stderr.on("data", (d) => (output += String(d)));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`RUN ${command} in ${cwd} exited ${code}:\n${output.slice(-4000)}`))));
  });
}

export async function directorySize(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await directorySize(path);
    else if (entry.isFile()) total += (await stat(path)).size;
  }
  return total;
}

