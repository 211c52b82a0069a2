import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from '../wait';
import { startEpmd } from './epmd';
import { freePort, listensOn } from './ports';
import {
  identify,
  isRunning,
  processesMentioning,
  signalProcess,
  waitForExit,
  type ProcessIdentity,
} from './process-identity';
import { CHAOS_DIR_PREFIX, reaper } from './reaper';
import { type ServiceProcess } from './service-process';
import { Timings } from './timings';

const run = promisify(execFile);

export interface IsolatedRabbitMQOptions {
  /** How long a boot may take before it fails (ms). */
  startTimeout?: number;
  /**
   * Set by `RabbitMQCluster` for its nodes: the node then uses the cluster's epmd and Erlang
   * cookie instead of its own, so that it can join the others.
   */
  member?: RabbitMQClusterMember;
}

/** What the nodes of one `RabbitMQCluster` share, and the name the cluster gives each. */
export interface RabbitMQClusterMember {
  nodeName: string;
  /** The cluster's temp dir: the node's own dir is made inside it. */
  clusterDir: string;
  /** Port of the cluster's epmd, already running. */
  epmdPort: number;
  /** The cluster's Erlang cookie, written to the node's HOME. */
  cookie: string;
}

type State = 'new' | 'running' | 'app-stopped' | 'down' | 'removed';

/**
 * A private RabbitMQ node for chaos specs, never the machine's shared one. It has its own node
 * name (`cogman-chaos-<hex>@localhost`), AMQP and distribution ports, mnesia and log dirs under
 * its own temp dir, an empty plugin list (no management, no prometheus), its own Erlang cookie
 * (its own HOME) and its own epmd on a private port, so even `rabbitmqctl` cannot reach another
 * node from here. Started with `rabbitmq-server -detached`; the node's OS PID comes from its PID
 * file and is what `kill` and `stop` signal. A node of a `RabbitMQCluster` (`member`) uses the
 * cluster's epmd and cookie instead, and keeps the rest to itself.
 */
export class IsolatedRabbitMQ {
  readonly nodeName: string;
  readonly timings = new Timings();
  amqpPort = 0;
  distPort = 0;
  epmdPort = 0;
  dir = '';
  private state: State = 'new';
  private epmd?: ServiceProcess;
  private beam?: ProcessIdentity;
  private readonly scripts = rabbitmqScriptsDir();
  private readonly startTimeout: number;
  private readonly member?: RabbitMQClusterMember;

  constructor(options: IsolatedRabbitMQOptions = {}) {
    this.startTimeout = options.startTimeout ?? 90_000;
    this.member = options.member;
    this.nodeName =
      this.member?.nodeName ?? `cogman-chaos-${randomBytes(4).toString('hex')}@localhost`;
    if (this.member) this.epmdPort = this.member.epmdPort;
  }

  /** `amqp://guest:guest@127.0.0.1:<port>` (guest may log in from loopback only). */
  get uri(): string {
    return `amqp://guest:guest@127.0.0.1:${this.amqpPort}`;
  }

  /** OS PID of the node's Erlang VM while it runs. */
  get pid(): number | undefined {
    return this.beam && isRunning(this.beam) ? this.beam.pid : undefined;
  }

  /** PID of its private epmd (undefined for a cluster's node: the cluster runs that one). */
  get epmdPid(): number | undefined {
    return this.epmd?.running ? this.epmd.pid : undefined;
  }

  /**
   * Boots the node and waits until it accepts AMQP connections. The first call creates its dirs
   * and picks its ports; a later call (after `kill` or a shutdown) boots it again on the same
   * ports with the same data.
   */
  async start(): Promise<void> {
    if (this.state === 'running' || this.state === 'app-stopped') return;
    if (this.state === 'removed') throw new Error(`${this.nodeName} was stopped for good`);
    await this.timings.measure('start', async () => {
      if (this.state === 'new') await this.firstBoot();
      else await this.boot();
    });
  }

  /** `rabbitmqctl stop_app`: the broker stops (clients are disconnected), the VM and data stay. */
  async stopApp(): Promise<void> {
    this.expect('running', 'stopApp');
    await this.timings.measure('stopApp', () => this.ctl('stop_app'));
    this.state = 'app-stopped';
  }

  /** `rabbitmqctl start_app`: the broker comes back with its durable queues and messages. */
  async startApp(): Promise<void> {
    this.expect('app-stopped', 'startApp');
    await this.timings.measure('startApp', async () => {
      await this.ctl('start_app');
      await this.awaitListening();
    });
    this.state = 'running';
  }

  /** Shuts the node down cleanly and boots it again: same ports, same data, new OS process. */
  async restart(): Promise<void> {
    await this.timings.measure('restart', async () => {
      await this.terminate();
      await this.boot();
    });
  }

  /**
   * Shuts the node down cleanly (SIGTERM) and keeps its ports and data: `start` boots it again.
   */
  async shutdown(): Promise<void> {
    await this.timings.measure('shutdown', () => this.terminate());
  }

  /** Kills the node's VM with SIGKILL (a crash: nothing flushed, no goodbye to clients). */
  async kill(): Promise<void> {
    if (!this.beam) return;
    const beam = this.beam;
    await this.timings.measure('kill', async () => {
      signalProcess(beam, 'SIGKILL');
      await waitForExit(beam, `RabbitMQ node ${this.nodeName}`);
    });
    reaper.untrack(beam);
    this.beam = undefined;
    this.state = 'down';
  }

  /** Shuts the node down cleanly, stops its epmd and deletes its dirs. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.state === 'removed') return;
    await this.timings.measure('stop', async () => {
      await this.terminate();
      await this.epmd?.stop();
      if (this.dir) {
        // A VM whose PID never became known (a boot that timed out) still has our dir in its
        // command line.
        for (const stray of processesMentioning(this.dir)) {
          signalProcess(stray, 'SIGKILL');
          await waitForExit(stray, `a process of ${this.nodeName}`);
        }
        await rm(this.dir, { recursive: true, force: true });
        reaper.untrackCommandLine(this.dir);
        reaper.untrackDir(this.dir);
      }
    });
    this.state = 'removed';
  }

  /** Runs `rabbitmqctl -n <node> <args>` against this node only; resolves with its output. */
  ctl(...args: string[]): Promise<string> {
    return this.cli('rabbitmqctl', ...args);
  }

  /**
   * Runs one of RabbitMQ's CLI tools (`rabbitmqctl`, `rabbitmq-queues`, `rabbitmq-diagnostics`)
   * as `<tool> -n <node> <args>` against this node; resolves with its output.
   */
  async cli(tool: string, ...args: string[]): Promise<string> {
    try {
      const { stdout } = await run(join(this.scripts, tool), ['-n', this.nodeName, ...args], {
        env: this.env(),
        timeout: 120_000,
      });
      return stdout;
    } catch (error) {
      const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
      throw new Error(
        `${tool} ${args.join(' ')} failed on ${this.nodeName}: ${String(error)}\n${stdout}${stderr}`,
      );
    }
  }

  /** The last lines of the node's log, for failure messages. */
  logTail(lines = 40): string {
    const file = join(this.dir, 'log', `${this.nodeName}.log`);
    if (!existsSync(file)) return '(no log yet)';
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  }

  private async firstBoot(): Promise<void> {
    this.dir = await mkdtemp(
      this.member
        ? join(this.member.clusterDir, `${this.nodeName.split('@')[0]}-`)
        : `${CHAOS_DIR_PREFIX}rabbitmq-`,
    );
    reaper.trackDir(this.dir);
    // Every process of this node (and of its CLI) has `-home <dir>/home` on its command line.
    reaper.trackCommandLine(this.dir);
    const home = join(this.dir, 'home');
    await mkdir(home);
    await mkdir(join(this.dir, 'mnesia'));
    await mkdir(join(this.dir, 'log'));
    // An Erlang cookie of its own (or its cluster's): no other node accepts it.
    const cookie = this.member?.cookie ?? randomBytes(20).toString('hex');
    await writeFile(join(home, '.erlang.cookie'), cookie);
    await chmod(join(home, '.erlang.cookie'), 0o400);
    await writeFile(join(this.dir, 'enabled_plugins'), '');
    // Replaces the machine's rabbitmq-env.conf, which names the shared node.
    await writeFile(join(this.dir, 'rabbitmq-env.conf'), '');

    for (let attempt = 1; ; attempt++) {
      this.amqpPort = await freePort();
      this.distPort = await freePort();
      if (!this.member) this.epmdPort = await freePort();
      // Replaces the machine's rabbitmq.conf, which listens on the shared node's port.
      await writeFile(
        join(this.dir, 'rabbitmq.conf'),
        `listeners.tcp.local = 127.0.0.1:${this.amqpPort}\nloopback_users.guest = true\n`,
      );
      try {
        if (!this.member) this.epmd = await startEpmd(this.epmdPort);
        await this.boot();
        return;
      } catch (error) {
        const clash = /eaddrinuse|address already in use|dist_port_already_used/i.test(
          `${String(error)} ${this.logTail(Infinity)}`,
        );
        if (!clash || attempt === 3) throw error;
        // Another program took a port between the probe and the bind: new ports, new try.
        await this.terminate();
        await this.epmd?.stop();
      }
    }
  }

  private async boot(): Promise<void> {
    const pidFile = join(this.dir, 'rabbitmq.pid');
    const crashDump = join(this.dir, 'erl_crash.dump');
    await rm(pidFile, { force: true });
    await rm(crashDump, { force: true });
    await run(join(this.scripts, 'rabbitmq-server'), ['-detached'], {
      env: this.env(),
      cwd: this.dir,
      timeout: 30_000,
    });
    // A VM that fails before writing its PID file (its distribution port taken, say) leaves
    // only a crash dump in its working directory; its slogan says why.
    const started = await waitFor(
      `the PID file of ${this.nodeName}`,
      async () => {
        const slogan = /^Slogan: .*\n/m.exec(await readFile(crashDump, 'utf8').catch(() => ''));
        if (slogan) return { slogan: slogan[0].trim() };
        const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
        return pid > 0 && { pid };
      },
      { timeout: this.startTimeout, interval: 20 },
    );
    if ('slogan' in started) {
      this.state = 'down';
      throw new Error(`RabbitMQ node ${this.nodeName} failed at boot: ${started.slogan}`);
    }
    const { pid } = started;
    const beam = identify(pid);
    this.beam = beam;
    reaper.track(beam, `rabbitmq ${this.nodeName}`);
    const outcome = await waitFor(
      `${this.nodeName} to accept AMQP connections on ${this.amqpPort}`,
      async () =>
        !isRunning(beam) ? 'exited' : (await listensOn(beam.pid, this.amqpPort)) && 'ready',
      { timeout: this.startTimeout, interval: 50 },
    );
    if (outcome === 'exited') {
      reaper.untrack(beam);
      this.beam = undefined;
      this.state = 'down';
      throw new Error(`RabbitMQ node ${this.nodeName} exited at boot:\n${this.logTail()}`);
    }
    try {
      await this.ctl('await_startup', '--timeout', String(Math.ceil(this.startTimeout / 1000)));
    } catch (error) {
      throw new Error(`${String(error)}\nLog of the node:\n${this.logTail()}`, { cause: error });
    }
    this.state = 'running';
  }

  /** A clean shutdown: SIGTERM (RabbitMQ stops gracefully on it), SIGKILL after 60 s. */
  private async terminate(): Promise<void> {
    const beam = this.beam;
    if (!beam) return;
    if (signalProcess(beam, 'SIGTERM')) {
      try {
        await waitForExit(beam, `RabbitMQ node ${this.nodeName}`, 60_000);
      } catch {
        signalProcess(beam, 'SIGKILL');
        await waitForExit(beam, `RabbitMQ node ${this.nodeName}`);
      }
    }
    reaper.untrack(beam);
    this.beam = undefined;
    this.state = 'down';
  }

  private awaitListening(): Promise<unknown> {
    const beam = this.beam!;
    return waitFor(`${this.nodeName} to listen on ${this.amqpPort}`, () =>
      listensOn(beam.pid, this.amqpPort),
    );
  }

  private expect(state: State, action: string): void {
    if (this.state !== state) throw new Error(`${action}: ${this.nodeName} is ${this.state}`);
  }

  /** The environment of the server and of rabbitmqctl: everything points at this node's dir. */
  private env(): NodeJS.ProcessEnv {
    const inherited = Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !/^(RABBITMQ_|ERL_)/.test(name)),
    );
    return {
      ...inherited,
      HOME: join(this.dir, 'home'),
      ERL_EPMD_PORT: String(this.epmdPort),
      ERL_EPMD_ADDRESS: '127.0.0.1',
      ERL_FLAGS: '-kernel inet_dist_use_interface {127,0,0,1}',
      RABBITMQ_NODENAME: this.nodeName,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(this.amqpPort),
      RABBITMQ_DIST_PORT: String(this.distPort),
      RABBITMQ_MNESIA_BASE: join(this.dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(this.dir, 'log'),
      RABBITMQ_PID_FILE: join(this.dir, 'rabbitmq.pid'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(this.dir, 'enabled_plugins'),
      RABBITMQ_CONFIG_FILE: join(this.dir, 'rabbitmq.conf'),
      RABBITMQ_ADVANCED_CONFIG_FILE: join(this.dir, 'advanced.config'),
      RABBITMQ_CONF_ENV_FILE: join(this.dir, 'rabbitmq-env.conf'),
      // rabbitmqctl's own node listens on a port the kernel picks, not in the shared 35672+ range.
      RABBITMQ_CTL_DIST_PORT_MIN: '0',
      RABBITMQ_CTL_DIST_PORT_MAX: '0',
    };
  }
}

/**
 * The directory of the real `rabbitmq-server` and `rabbitmqctl` scripts. Debian's
 * `/usr/sbin/rabbitmq-server` is a wrapper that switches to the `rabbitmq` user (and its HOME,
 * hence the shared node's cookie) and writes the shared node's startup log; the scripts it wraps
 * sit beside it. `COGMAN_RABBITMQ_SCRIPTS_DIR` overrides the lookup.
 */
function rabbitmqScriptsDir(): string {
  const configured = process.env.COGMAN_RABBITMQ_SCRIPTS_DIR;
  if (configured) return configured;
  const path = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/lib/rabbitmq/bin'];
  for (const dir of path) {
    const candidate = join(dir, 'rabbitmq-server');
    if (!dir || !existsSync(candidate)) continue;
    const scripts = dirname(realpathSync(candidate));
    if (existsSync(join(scripts, 'rabbitmq-server')) && existsSync(join(scripts, 'rabbitmqctl'))) {
      return scripts;
    }
  }
  throw new Error('rabbitmq-server is not installed here (or set COGMAN_RABBITMQ_SCRIPTS_DIR)');
}
