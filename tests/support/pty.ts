/**
 * A program run in a real pseudo-terminal, driven by keystrokes: Python's `pty` module (standard
 * library, no native build) forks the program with the pty's slave as its controlling terminal and
 * relays bytes between it and this process. What the program sees is a TTY: raw mode, echo
 * control, and Ctrl-C (0x03) turned into SIGINT by the line discipline unless the program reads
 * raw keys.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { stripVTControlCharacters } from "node:util";

const RELAY = String.raw`
import os, pty, select, sys, fcntl, termios, struct
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    os.execvp(sys.argv[1], sys.argv[1:])
inputs = [0, fd]
while True:
    ready, _, _ = select.select(inputs, [], [])
    if fd in ready:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:
            break
        os.write(1, data)
    if 0 in ready:
        data = os.read(0, 65536)
        if data:
            os.write(fd, data)
        else:
            inputs.remove(0)
_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
sys.exit(128 - code if code < 0 else code)
`;

export const KEYS = { up: "\x1b[A", down: "\x1b[B", enter: "\r", space: " ", backspace: "\x7f", ctrlC: "\x03" } as const;

export class PtyProcess {
  private raw = "";
  private cursor = 0;
  private readonly child: ChildProcessWithoutNullStreams;
  private waiters: (() => void)[] = [];
  readonly exited: Promise<number>;

  constructor(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }) {
    this.child = spawn("python3", ["-c", RELAY, command, ...args], { cwd: options.cwd, env: { ...process.env, TERM: "xterm-256color", ...options.env } });
    const onData = (d: Buffer) => {
      this.raw += d.toString("utf8");
      for (const w of this.waiters.splice(0)) w();
    };
    this.child.stdout.on("data", onData);
    this.child.stderr.on("data", onData);
    this.exited = new Promise((resolve) => this.child.on("close", (code) => {
      for (const w of this.waiters.splice(0)) w();
      resolve(code ?? -1);
    }));
  }

  /** Everything shown so far, without terminal control sequences. */
  get text(): string {
    return stripVTControlCharacters(this.raw);
  }

  /** Everything the program wrote, control sequences included. */
  get rawOutput(): string {
    return this.raw;
  }

  /** Waits until `pattern` appears after the previous match; fails with the screen if the program exits first. */
  async expect(pattern: RegExp, timeoutMs = 30_000): Promise<RegExpExecArray> {
    let exited = false;
    void this.exited.then(() => (exited = true));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const rest = this.text.slice(this.cursor);
      const m = pattern.exec(rest);
      if (m) {
        this.cursor += m.index + m[0].length;
        return m;
      }
      if (exited || Date.now() > deadline) {
        throw new Error(`expected ${pattern} ${exited ? "before the program exited" : "in time"}; the screen after the last match:\n${rest.slice(-3000)}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 250);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  send(keys: string): void {
    this.child.stdin.write(keys);
  }

  /** Types `text` and presses Enter. */
  line(text: string): void {
    this.send(text + KEYS.enter);
  }

  kill(): void {
    this.child.kill("SIGKILL");
  }
}
