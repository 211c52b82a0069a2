import { spawn, type ChildProcess } from 'node:child_process';
import { identify, type ProcessIdentity } from './process-identity';
import { reaper } from './reaper';

/** Output kept from a service process, for error messages. */
const OUTPUT_LIMIT = 64 * 1024;

/**
 * A service run as a child of the test process (not daemonized): its PID is known from the
 * start, it is registered with the reaper at once and unregistered when it exits.
 */
export class ServiceProcess {
  readonly identity: ProcessIdentity;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private buffered = '';
  private exitedNow = false;

  private constructor(
    readonly label: string,
    command: string,
    args: string[],
    options: { env?: NodeJS.ProcessEnv; cwd?: string },
  ) {
    this.child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const spawnError = new Promise<Error>((resolve) => this.child.once('error', resolve));
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitedNow = true;
        reaper.untrack(this.identity);
        resolve({ code, signal });
      });
      // A command that cannot be spawned emits 'error' and no 'exit'.
      void spawnError.then((error) => {
        this.exitedNow = true;
        this.buffered += `\n${error.message}`;
        resolve({ code: null, signal: null });
      });
    });
    if (this.child.pid === undefined) {
      this.identity = { pid: -1, startTime: null };
      return;
    }
    this.identity = identify(this.child.pid);
    reaper.track(this.identity, label);
    const keep = (chunk: Buffer) => {
      this.buffered = (this.buffered + chunk.toString()).slice(-OUTPUT_LIMIT);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
  }

  static spawn(
    label: string,
    command: string,
    args: string[],
    options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
  ): ServiceProcess {
    return new ServiceProcess(label, command, args, options);
  }

  get pid(): number {
    return this.identity.pid;
  }

  get running(): boolean {
    return !this.exitedNow;
  }

  /** What the process printed (the last 64 KiB). */
  output(): string {
    return this.buffered;
  }

  /** Sends `signal` and waits for the exit; SIGKILL if it has not exited after `timeout` ms. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeout = 30_000): Promise<void> {
    if (!this.running) return;
    this.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), timeout);
    });
    const result = await Promise.race([this.exited, late]);
    clearTimeout(timer);
    if (result === 'late') {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }

  /** Kills the process at once (SIGKILL) and waits for the exit. */
  kill(): Promise<void> {
    return this.stop('SIGKILL');
  }
}
