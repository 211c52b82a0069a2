import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { uniqueNamespace } from './support/services';
import { within } from './support/wait';

const ROOT = join(__dirname, '..');

/** Runs the demo (from its sources) to its end; resolves with its exit code and output. */
async function runDemo(env: Record<string, string>) {
  const child = spawn(process.execPath, ['-r', '@swc-node/register', 'apps/demo/src/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, COGMAN_NAMESPACE: uniqueNamespace('demo'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    const code = await within('the demo to exit', exited, 60_000);
    return { code, stdout, stderr };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** The demo's first run on a machine without its services: one clear paragraph, no stack. */
describe('The demo without its services', () => {
  it.each([
    ['RabbitMQ', { COGMAN_AMQP_URI: 'amqp://127.0.0.1:1' }],
    ['Redis', { COGMAN_REDIS_URI: 'redis://127.0.0.1:1/0' }],
  ])('says within seconds that %s is missing and how to get it', async (what, env) => {
    const { code, stdout, stderr } = await runDemo(env);
    expect(code).toBe(1);
    expect(stderr).toContain(`The demo could not reach ${what}.`);
    expect(stderr).toContain('docker compose up -d');
    expect(stderr).toContain('COGMAN_AMQP_URI');
    expect(stderr).toContain('COGMAN_REDIS_URI');
    expect(`${stdout}\n${stderr}`).not.toMatch(/^\s+at /m);
  });
});
