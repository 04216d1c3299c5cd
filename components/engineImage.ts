import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type * as dockerTypes from "@pulumi/docker";

/** The repository root: the image's build context (container/Dockerfile copies from it). */
export const REPO_ROOT = path.resolve(__dirname, "..");

/** What goes into the image besides container/ (the Dockerfile installs from the root lockfile). */
const ROOT_FILES = ["package.json", "package-lock.json"];
const SKIP_DIRS = new Set(["node_modules", "dist", ".turbo", "coverage"]);

function listFiles(dir: string, out: string[]): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name)) listFiles(full, out);
    } else if (entry.isFile() && !entry.name.endsWith(".tsbuildinfo")) {
      out.push(full);
    }
  }
}

/**
 * Content hash of everything that goes into the engine image: container/ (sources, Dockerfile,
 * package.json; not dist/ or node_modules/) plus the root package.json and lockfile. An unchanged
 * engine gives the same tag, so nothing is rebuilt or rolled; any change gives a new tag.
 */
export function engineContentHash(root = REPO_ROOT): string {
  const files: string[] = [];
  listFiles(path.join(root, "container"), files);
  for (const f of ROOT_FILES) {
    const full = path.join(root, f);
    if (statSync(full, { throwIfNoEntry: false })?.isFile()) files.push(full);
  }
  const hash = createHash("sha256");
  for (const file of files.map((f) => path.relative(root, f).split(path.sep).join("/")).sort()) {
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
