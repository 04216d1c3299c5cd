/**
 * Summarizes a V8 CPU profile (`node --cpu-prof`) into the functions and packages that took the
 * most self time — the part of a profile an engine engineer acts on.
 */
import { readFile } from "node:fs/promises";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileSummary {
  totalMs: number;
  functions: { name: string; where: string; selfMs: number; pct: number }[];
  areas: { area: string; selfMs: number; pct: number }[];
}

function area(url: string, name: string): string {
  if (url === "") return name.startsWith("(") ? name : "(native/V8 builtins)";
  if (url.startsWith("node:")) return `node core (${url.replace(/^node:/, "").split("/").slice(0, 2).join("/")})`;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return `npm ${nm[1]}`;
  const engine = /container\/dist\/(.*)$/.exec(url);
  if (engine) return `engine ${engine[1].replace(/\.js$/, "")}`;
  return url.replace(/^file:\/\//, "");
}

export async function summarizeCpuProfile(path: string, top = 25): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(path, "utf8")) as CpuProfile;
  const selfUs = new Map<number, number>();
  if (profile.samples && profile.timeDeltas) {
    for (let i = 0; i < profile.samples.length; i++) {
      const id = profile.samples[i];
      selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
    }
  }
  const totalUs = profile.endTime - profile.startTime;
  const byFunction = new Map<string, { name: string; where: string; us: number }>();
  const byArea = new Map<string, number>();
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    if (us === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || "(anonymous)";
    const where = url ? `${url.replace(/^file:\/\/.*?\/(container|node_modules)\//, "$1/")}:${lineNumber + 1}` : "";
    const key = `${name}@${where}`;
    const entry = byFunction.get(key) ?? { name, where, us: 0 };
    entry.us += us;
    byFunction.set(key, entry);
    const a = area(url, name);
    byArea.set(a, (byArea.get(a) ?? 0) + us);
  }
  const pct = (us: number) => Math.round((1000 * us) / totalUs) / 10;
  return {
    totalMs: Math.round(totalUs / 1000),
    functions: [...byFunction.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, selfMs: Math.round(f.us / 1000), pct: pct(f.us) })),
    areas: [...byArea.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 15)
      .map(([a, us]) => ({ area: a, selfMs: Math.round(us / 1000), pct: pct(us) })),
  };
}

export function formatProfile(s: ProfileSummary): string {
  const lines = [`CPU profile: ${s.totalMs} ms wall`, "", "| area | self ms | % |", "| --- | ---: | ---: |"];
  for (const a of s.areas) lines.push(`| ${a.area} | ${a.selfMs} | ${a.pct} |`);
  lines.push("", "| function | where | self ms | % |", "| --- | --- | ---: | ---: |");
  for (const f of s.functions) lines.push(`| ${f.name} | ${f.where} | ${f.selfMs} | ${f.pct} |`);
  return lines.join("\n");
}

/**
 * The profiles `node --cpu-prof` wrote into `dir` (CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile,
 * one per thread: worker threads inherit the flag), the main thread (thread 0) first.
 */
export function threadProfiles(files: string[]): { file: string; thread: number }[] {
  return files
    .filter((f) => f.endsWith(".cpuprofile"))
    .map((file) => ({ file, thread: Number(/\.(\d+)\.\d+\.cpuprofile$/.exec(file)?.[1] ?? 0) }))
    .sort((a, b) => a.thread - b.thread || a.file.localeCompare(b.file));
}

/** One summary per thread: the main thread's, then each worker thread's under its own heading. */
export async function summarizeThreads(dir: string, files: string[]): Promise<string> {
  const parts: string[] = [];
  for (const { file, thread } of threadProfiles(files)) {
    const summary = formatProfile(await summarizeCpuProfile(`${dir}/${file}`));
    parts.push(thread === 0 ? summary : `### Worker thread ${thread}\n\n${summary}`);
  }
  return parts.join("\n\n");
}
