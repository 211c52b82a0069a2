import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { DEFAULT_SYSTEMS, MODES, PRIORITIES } from '../bench/support/config';

const ROOT = join(__dirname, '..');

/** Runs a benchmark entry point as `npm run` would, and returns its exit code and output. */
function runBench(
  script: string,
  args: string[],
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['-r', '@swc-node/register', join(ROOT, 'bench', script), ...args],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, output }));
  });
}

/**
 * The benchmarks are not tests: this only proves that their smoke mode still runs against the
 * real services and prints every row. No timing is asserted.
 */
describe('benchmarks, smoke mode', () => {
  it('npm run bench -- --smoke runs every system in every mode and prints the table', async () => {
    const { code, output } = await runBench('throughput.main.ts', ['--smoke']);
    expect({ code, output }).toMatchObject({ code: 0 });
    // Paced rows are measured at each priority (their queues differ: low priority is lazy).
    const labels = MODES.flatMap((mode) =>
      mode === 'paced' ? PRIORITIES.map((priority) => `${mode} ${priority}`) : [mode],
    );
    for (const label of labels) {
      for (const system of DEFAULT_SYSTEMS) {
        expect(output).toMatch(new RegExp(`^${label} / ${system} +1 `, 'm'));
      }
    }
    expect(output).toMatch(/^single: Cogman e2e \/ BullMQ e2e = /m);
    expect(output).toMatch(/^bulk: Cogman e2e \/ raw e2e = /m);
    expect(output).toMatch(/^single: Cogman \(2 processes\) e2e \/ BullMQ \(2 processes\) e2e = /m);
    for (const priority of PRIORITIES) {
      expect(output).toMatch(
        new RegExp(
          `^paced at \\d+/s, ${priority} priority: Cogman p99 send latency = .*; raw amqplib `,
          'm',
        ),
      );
    }
    expect(output).toContain('Results written to');
  }, 600_000);

  it('npm run bench:scale -- --smoke enqueues and drains and prints its row', async () => {
    const { code, output } = await runBench('scale.main.ts', ['--smoke']);
    expect({ code, output }).toMatchObject({ code: 0 });
    // The row of the one size: every task processed exactly once.
    expect(output).toMatch(/^300 .* yes$/m);
  }, 300_000);
});
