import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const root = join(__dirname, '..');
const run = promisify(execFile);

/**
 * test/fixtures/typed-app: an application compiled against the built package with skipLibCheck
 * false (every .d.ts Cogman ships is checked), using the typed task map, @TaskHandler's payload
 * check and forRootAsync's typed factory; each of its @ts-expect-error lines must be an error.
 */
describe('the published types', () => {
  it('compile in a strict application with skipLibCheck false, and catch its mistakes', async () => {
    expect(existsSync(join(root, 'libs/cogman/dist/index.d.ts'))).toBe(true); // npm run build
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    const result = await run(
      process.execPath,
      [tsc, '-p', join(root, 'test/fixtures/typed-app/tsconfig.json')],
      { cwd: root, encoding: 'utf8' },
    ).then(
      () => ({ code: 0, output: '' }),
      (error: { code: number; stdout: string; stderr: string }) => ({
        code: error.code,
        output: error.stdout + error.stderr,
      }),
    );
    expect(result).toEqual({ code: 0, output: '' });
  });
});
