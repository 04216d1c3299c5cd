/**
 * CPU time of a process (user + system, from /proc/<pid>/stat), sampled while it runs, so a
 * figure survives the process exiting. On a machine shared with other work, CPU seconds per
 * change are far steadier than wall-clock rates, and they show who does the work: the consumer
 * (engine or pg_recvlogical) or the walsender decoding for it.
 */
import { readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ; 100 on Linux x86-64). */
const TICKS = 100;

export function cpuSecondsOf(pid: number): number | undefined {
  const t = cpuTimesOf(pid);
  return t && t.user + t.system;
}

/** User and system (kernel) CPU seconds of a process, all its threads. */
export function cpuTimesOf(pid: number): { user: number; system: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { user: Number(fields[11]) / TICKS, system: Number(fields[12]) / TICKS };
  } catch {
    return undefined;
  }
}

export class CpuSampler {
  /** The latest times seen per process (they only grow; a late read of an exited pid is ignored). */
  private readonly last = new Map<number, { user: number; system: number }>();
  private timer: NodeJS.Timeout;

  /** `pids` is asked on every sample (a walsender's pid is only known once it runs). */
  constructor(
    private readonly pids: () => Promise<(number | undefined)[]> | (number | undefined)[],
    everyMs = 50,
  ) {
    this.timer = setInterval(() => void this.sample(), everyMs);
  }

  async sample(): Promise<void> {
    let pids: (number | undefined)[];
    try {
      pids = await this.pids();
    } catch {
      return;
    }
    for (const pid of pids) {
      if (pid === undefined) continue;
      const t = cpuTimesOf(pid);
      const seen = this.last.get(pid);
      if (t !== undefined && (seen === undefined || t.user + t.system >= seen.user + seen.system)) this.last.set(pid, t);
    }
  }

  /** Stops sampling; returns the CPU seconds of every process seen, summed. */
  async stop(): Promise<number> {
    await this.sample();
    clearInterval(this.timer);
    let total = 0;
    for (const t of this.last.values()) total += t.user + t.system;
    return total;
  }

  /** Of the seconds stop() returned, those spent in the kernel (system time): syscalls, page faults, the network stack. */
  systemSeconds(): number {
    let total = 0;
    for (const t of this.last.values()) total += t.system;
    return total;
  }
}
