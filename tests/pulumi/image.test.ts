/**
 * The engine image's build context is bounded by the root .dockerignore (the only ignore file the
 * Pulumi Docker provider reads), its tag is a hash of exactly that context, and the image's inputs
 * are the same from two checkouts of the same tree in different directories: an unchanged tree gives
 * no image change, so CI does not rebuild or roll the engine and the drift check can pass.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { buildContentHash, buildContextFiles, engineContentHash, relativeBuildPaths } from "../../components/engineImage";
import { buildContext } from "../sinks/support/dockerfile";
import { one, PROJECT, REPO, runProgram, TEST_PASSWORD, withoutSecrets } from "./harness";

describe("engine image", function () {
  this.timeout(240_000);

  it("the repository's context holds what the Dockerfile copies, and never node_modules, .git, tests or docs", () => {
    const files = buildContextFiles(REPO);
    for (const f of ["container/Dockerfile", "container/src/engine.ts", "container/bin/cdc-engine.js", "package-lock.json", "lakehouse/package.json"]) assert.ok(files.includes(f), f);
    for (const f of files) assert.doesNotMatch(f, /(^|\/)(node_modules|\.git|dist)\/|^(tests|docs|components|notebooks|bench|lakehouse\/(?!package\.json$))/, f);
    assert.ok(files.length < 500, `${files.length} files in the build context`);
  });

  it("the image replay (tests/sinks) builds from the same context the tag hashes", async () => {
    const into = mkdtempSync(path.join(tmpdir(), "image-context-"));
    try {
      const replayed = await buildContext(REPO, readFileSync(path.join(REPO, ".dockerignore"), "utf8"), into);
      assert.deepEqual(replayed, buildContextFiles(REPO));
    } finally {
      rmSync(into, { recursive: true, force: true });
    }
  });

  describe("content hash", () => {
    let root: string;
    const write = (rel: string, text: string) => {
      mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
      writeFileSync(path.join(root, rel), text);
    };
    beforeEach(() => {
      root = mkdtempSync(path.join(tmpdir(), "image-hash-"));
      write(".dockerignore", "*\n!container/Dockerfile\n!package.json\n!container/src/**\n");
      write("package.json", "{}");
      write("container/Dockerfile", "FROM node:24\nCOPY package.json ./\nCOPY container/src container/src\n");
      write("container/src/engine.ts", "export {}");
    });
    afterEach(() => rmSync(root, { recursive: true, force: true }));

    it("is stable, ignores what the context leaves out, and changes with any file it lets in, the Dockerfile or the ignore rules", () => {
      const h0 = engineContentHash(root);
      assert.match(h0, /^[0-9a-f]{64}$/);
      write("node_modules/x/index.js", "dep");
      write(".git/HEAD", "ref: refs/heads/main");
      write("docs/x.md", "doc");
      write("package-lock.json", "{}");
      assert.equal(engineContentHash(root), h0, "files outside the context leave the tag alone");
      for (const [file, text] of [["container/src/engine.ts", "export const x = 1"], ["container/src/new.ts", "new"], ["package.json", '{"v":2}'], ["container/Dockerfile", "FROM node:22\n"], [".dockerignore", "*\n!container/Dockerfile\n!package.json\n!package-lock.json\n!container/src/**\n"]]) {
        const before = engineContentHash(root);
        write(file, text);
        assert.notEqual(engineContentHash(root), before, `${file} must change the tag`);
      }
    });

    it("is the same for a copy of the tree in another directory, and the build paths are relative", () => {
      const copy = mkdtempSync(path.join(tmpdir(), "image-hash-copy-"));
      try {
        cpSync(root, copy, { recursive: true });
        assert.equal(engineContentHash(copy), engineContentHash(root));
        assert.deepEqual(relativeBuildPaths(copy, path.join(copy, "container/Dockerfile"), copy), relativeBuildPaths(root, path.join(root, "container/Dockerfile"), root));
        assert.deepEqual(relativeBuildPaths(root, path.join(root, "container/Dockerfile"), root), { context: ".", dockerfile: "container/Dockerfile" });
      } finally {
        rmSync(copy, { recursive: true, force: true });
      }
    });

    it("a context without a .dockerignore is refused with what to add", () => {
      rmSync(path.join(root, ".dockerignore"));
      assert.throws(() => buildContentHash(root, path.join(root, "container/Dockerfile")), /has no \.dockerignore.*add a \.dockerignore/);
    });
  });

  it("two checkouts of the same tree in different directories register the same image (no diff, no rebuild)", async () => {
    // The working tree as a fresh checkout has it: tracked and new files, nothing git ignores.
    const files = execFileSync("git", ["ls-files", "-co", "--exclude-standard", "-z"], { cwd: REPO, encoding: "utf8" }).split("\0").filter(Boolean);
    const checkouts = [mkdtempSync(path.join(tmpdir(), "checkout-a-")), mkdtempSync(path.join(tmpdir(), "checkout-b-nested-"))];
    try {
      for (const dir of checkouts) {
        for (const f of files) {
          mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
          cpSync(path.join(REPO, f), path.join(dir, f), { dereference: false });
        }
        symlinkSync(path.join(REPO, "node_modules"), path.join(dir, "node_modules"), "dir");
      }
      const landing = mkdtempSync(path.join(tmpdir(), "checkout-landing-"));
      const config = {
        [`${PROJECT}:cloud`]: "local",
        [`${PROJECT}:postgres`]: JSON.stringify({ host: "host.docker.internal", database: "app", user: "cdc_user" }),
        [`${PROJECT}:postgresPassword`]: TEST_PASSWORD,
        [`${PROJECT}:localLandingDir`]: landing,
      };
      const runs = await Promise.all(checkouts.map((checkout) => runProgram({ stack: "dev", config, secretKeys: [`${PROJECT}:postgresPassword`], dryRun: true, checkout })));
      rmSync(landing, { recursive: true, force: true });
      const [a, b] = runs.map((r) => {
        assert.equal(r.exitCode, 0, `${r.error}\n${r.stderr}`);
        return withoutSecrets(one(r, "docker:index/image:Image").inputs) as Record<string, any>;
      });
      assert.deepEqual(a, b);
      assert.deepEqual([a.build.context, a.build.dockerfile], [".", "container/Dockerfile"]);
      assert.match(a.imageName, new RegExp(`:${engineContentHash().slice(0, 20)}$`), "the checkouts' tag is the working tree's");
    } finally {
      for (const dir of checkouts) rmSync(dir, { recursive: true, force: true });
    }
  });
});
