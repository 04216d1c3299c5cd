import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import ignore from "@balena/dockerignore";
import * as pulumi from "@pulumi/pulumi";
import type * as dockerTypes from "@pulumi/docker";

/** This package's root: the default build context of the engine image (container/Dockerfile copies from it). */
export const PACKAGE_ROOT = path.resolve(__dirname, "..");
/** The engine's Dockerfile, relative to PACKAGE_ROOT. */
export const ENGINE_DOCKERFILE = "container/Dockerfile";

const toPosix = (p: string) => p.split(path.sep).join("/");

/**
 * The files of `context` that enter the build context, as POSIX paths relative to it, sorted.
 * `<context>/.dockerignore` decides, with Docker's own matching rules (@balena/dockerignore), because
 * it is the only ignore file the Pulumi Docker provider reads for the context it hashes and uploads.
 * Directories the rules exclude are not walked unless a `!` rule could re-include something in them,
 * so node_modules and .git are never even listed.
 */
export function buildContextFiles(context: string): string[] {
  const ignoreFile = path.join(context, ".dockerignore");
  const text = statSync(ignoreFile, { throwIfNoEntry: false })?.isFile() ? readFileSync(ignoreFile, "utf8") : undefined;
  if (text === undefined) {
    throw new pulumi.RunError(`the image build context ${context} has no .dockerignore: the Docker provider would hash and upload everything in it (node_modules, .git), and rebuild on every checkout; add a .dockerignore that lets in only what the Dockerfile copies`);
  }
  const rules = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
  const matcher = ignore().add(rules);
  const reincludes = rules.filter((r) => r.startsWith("!")).map((r) => r.slice(1).replace(/^\/+/, ""));
  const mayReinclude = (dir: string) => reincludes.some((r) => r.startsWith(`${dir}/`) || /^[*?[]/.test(r));
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(path.join(context, dir), { withFileTypes: true })) {
      const rel = dir === "" ? entry.name : `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (!matcher.ignores(rel) || mayReinclude(rel)) walk(rel);
      } else if (!matcher.ignores(rel)) {
        files.push(rel);
      }
    }
  };
  walk("");
  return files.sort();
}

/**
 * Content hash of the build: the Dockerfile and every file the context lets in (path and bytes).
 * It is what the Docker provider's own context hash covers, so the tag changes exactly when the
 * provider would see a change: an unchanged tree (any checkout, any directory) gives the same tag
 * and nothing is rebuilt or rolled.
 */
export function buildContentHash(context: string, dockerfile: string): string {
  const hash = createHash("sha256");
  hash.update("Dockerfile\u0000").update(readFileSync(dockerfile)).update("\u0000");
  for (const file of buildContextFiles(context)) hash.update(file).update("\u0000").update(readFileSync(path.join(context, file))).update("\u0000");
  return hash.digest("hex");
}

/** The engine image's content hash, from this package's tree. */
export function engineContentHash(root = PACKAGE_ROOT): string {
  return buildContentHash(root, path.join(root, ENGINE_DOCKERFILE));
}

/**
 * The `build` paths as the provider stores them: relative to the Pulumi project directory (the
 * program's working directory, which the provider resolves them against), so two checkouts of the
 * same commit in different directories produce the same inputs and no diff.
 */
export function relativeBuildPaths(context: string, dockerfile: string, projectDir = process.cwd()): { context: string; dockerfile: string } {
  const rel = (p: string) => toPosix(path.relative(projectDir, p)) || ".";
  return { context: rel(context), dockerfile: rel(dockerfile) };
}

export interface EngineImageArgs {
  /** Full repository name without tag (registry host included), e.g. 1234.dkr.ecr.eu-west-1.amazonaws.com/cdc-dev-engine. */
  repository: pulumi.Input<string>;
  /** Target platform of the build, e.g. linux/arm64 for Graviton, linux/amd64 elsewhere. */
  platform: "linux/amd64" | "linux/arm64";
  /** Push credentials; omit to keep the image local (the local target). */
  registry?: { server: pulumi.Input<string>; username: pulumi.Input<string>; password: pulumi.Input<string> };
  /** Build context directory, absolute or relative to the working directory; it must hold a .dockerignore. Default: this package's root. */
  context?: string;
  /** The Dockerfile, absolute or relative to the working directory. Default: container/Dockerfile of this package. */
  dockerfile?: string;
}

/**
 * The engine image, built with its Dockerfile from a bounded context and pushed to the stack's
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
    const context = path.resolve(args.context ?? PACKAGE_ROOT);
    const dockerfile = path.resolve(args.dockerfile ?? (args.context === undefined ? path.join(PACKAGE_ROOT, ENGINE_DOCKERFILE) : path.join(context, "Dockerfile")));
    if (!statSync(dockerfile, { throwIfNoEntry: false })?.isFile()) {
      throw new pulumi.RunError(`the engine image's Dockerfile ${dockerfile} does not exist; pass EngineImageArgs.dockerfile (absolute, or relative to the project directory)`);
    }
    this.tag = buildContentHash(context, dockerfile).slice(0, 20);
    const image = new docker.Image(`${name}`, {
      imageName: pulumi.interpolate`${args.repository}:${this.tag}`,
      build: {
        ...relativeBuildPaths(context, dockerfile),
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
