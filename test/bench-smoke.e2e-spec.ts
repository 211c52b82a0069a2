import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { DEFAULT_SYSTEMS, MODES } from '../bench/support/config';

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
    for (const mode of MODES) {
      for (const system of DEFAULT_SYSTEMS) {
        expect(output).toMatch(new RegExp(`^${mode} / ${system} +1 `, 'm'));
      }
    }
    expect(output).toMatch(/^single: Cogman e2e \/ BullMQ e2e = /m);
    expect(output).toMatch(/^bulk: Cogman e2e \/ raw e2e = /m);
    expect(output).toMatch(/^paced at \d+\/s: Cogman p99 send latency = /m);
    expect(output).toContain('Results written to');
  }, 600_000);

  it('npm run bench:scale -- --smoke enqueues and drains and prints its row', async () => {
    const { code, output } = await runBench('scale.main.ts', ['--smoke']);
    expect({ code, output }).toMatchObject({ code: 0 });
    // The row of the one size: every task processed exactly once.
    expect(output).toMatch(/^300 .* yes$/m);
  }, 300_000);
});
