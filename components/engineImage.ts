import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type * as dockerTypes from "@pulumi/docker";

/** The repository root: the image's build context (container/Dockerfile copies from it). */
export const REPO_ROOT = path.resolve(__dirname, "..");

const DOCKERFILE = "container/Dockerfile";
const SKIP_DIRS = new Set(["node_modules", "dist", ".turbo", "coverage"]);

function listFiles(full: string, out: string[]): void {
  const stat = statSync(full, { throwIfNoEntry: false });
  if (!stat) return;
  if (stat.isFile()) {
    if (!full.endsWith(".tsbuildinfo")) out.push(full);
    return;
  }
  if (!stat.isDirectory()) return;
  for (const entry of readdirSync(full, { withFileTypes: true })) {
    if (entry.isDirectory() && SKIP_DIRS.has(entry.name)) continue;
    listFiles(path.join(full, entry.name), out);
  }
}

/**
 * The build-context paths the Dockerfile copies from (`COPY`/`ADD` without `--from`), read from the
 * Dockerfile itself so the tag follows whatever the image really contains.
 */
export function dockerfileSources(dockerfile: string): string[] {
  const text = dockerfile.replace(/\\\r?\n/g, " ");
  const sources = new Set<string>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(COPY|ADD)\s+(.*)$/i.exec(line);
    if (!m) continue;
    const args = m[2].trim().startsWith("[") ? (JSON.parse(m[2]) as string[]) : m[2].trim().split(/\s+/);
    if (args.some((a) => /^--from=/i.test(a))) continue;
    const paths = args.filter((a) => !a.startsWith("--"));
    for (const src of paths.slice(0, -1)) sources.add(src.replace(/^\.\//, "").replace(/\/+$/, "") || ".");
  }
  return [...sources];
}

/**
 * Content hash of everything that goes into the engine image: the Dockerfile, its
 * Dockerfile.dockerignore, and every path its COPY instructions take from the build context (without
 * dist/ and node_modules/, which the build recreates). An unchanged engine gives the same tag, so
 * nothing is rebuilt or rolled; any change to what the image contains gives a new tag. Without a
 * Dockerfile (not written yet) it falls back to container/ plus the root lockfiles.
 */
export function engineContentHash(root = REPO_ROOT): string {
  const dockerfilePath = path.join(root, DOCKERFILE);
  const dockerfile = statSync(dockerfilePath, { throwIfNoEntry: false })?.isFile() ? readFileSync(dockerfilePath, "utf8") : undefined;
  const sources = dockerfile !== undefined
    ? [DOCKERFILE, `${DOCKERFILE}.dockerignore`, ...dockerfileSources(dockerfile)]
    : ["container", "package.json", "package-lock.json"];
  const files: string[] = [];
  for (const src of sources) listFiles(path.join(root, src), files);
  const hash = createHash("sha256");
  for (const file of [...new Set(files.map((f) => path.relative(root, f).split(path.sep).join("/")))].sort()) {
    hash.update(file).update("\u0000").update(readFileSync(path.join(root, file))).update("\u0000");
  }
  return hash.digest("hex");
}

export interface EngineImageArgs {
  /** Full repository name without tag (registry host included), e.g. 1234.dkr.ecr.eu-west-1.amazonaws.com/cdc-dev-engine. */
  repository: pulumi.Input<string>;
  /** Target platform of the build, e.g. linux/arm64 for Graviton, linux/amd64 elsewhere. */
  platform: "linux/amd64" | "linux/arm64";
  /** Push credentials; omit to keep the image local (the local target). */
  registry?: { server: pulumi.Input<string>; username: pulumi.Input<string>; password: pulumi.Input<string> };
}

/**
 * The engine image, built from the repository with container/Dockerfile and pushed to the stack's
 * registry. Tagged with the content hash; never built during preview, so `pulumi preview` needs no
 * Docker daemon. `ref` is what services run: the pushed repo digest (a new image rolls them).
 */
export class EngineImage extends pulumi.ComponentResource {
  /** The content-hash tag. */
  readonly tag: string;
  /** repository:tag. */
  readonly imageName: pulumi.Output<string>;
  /** repository@sha256:… after a push (the local image id for local builds). */
  readonly ref: pulumi.Output<string>;

  constructor(name: string, args: EngineImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("postgres-cdc-multicloud:index:EngineImage", name, {}, opts);
    // Loaded here, not at the top: only stacks that build an image pay for the provider SDK.
    const docker = require("@pulumi/docker") as typeof dockerTypes;
    this.tag = engineContentHash().slice(0, 20);
    const image = new docker.Image(`${name}`, {
      imageName: pulumi.interpolate`${args.repository}:${this.tag}`,
      build: {
        context: REPO_ROOT,
        dockerfile: path.join(REPO_ROOT, "container", "Dockerfile"),
        platform: args.platform,
        builderVersion: "BuilderBuildKit",
        args: { BUILDKIT_INLINE_CACHE: "1" },
      },
      buildOnPreview: false,
      skipPush: args.registry === undefined,
      registry: args.registry,
    }, { parent: this });
    this.imageName = image.imageName;
    this.ref = image.repoDigest;
    this.registerOutputs({ tag: this.tag, imageName: this.imageName, ref: this.ref });
  }
}
