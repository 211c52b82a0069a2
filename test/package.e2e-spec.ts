import { execFile, execFileSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { freshApp, installClosure, packPackage, ROOT, type Packed } from './support/package-app';
import { AMQP_URI, REDIS_URI, cleanUp, uniqueNamespace } from './support/services';

const root = ROOT;
const run = promisify(execFile);

describe('the built package', () => {
  it('is what require("@cogman/nestjs") loads from the repository root, as an installed app would', () => {
    // A separate process, so Jest's mapping of @cogman/nestjs to the sources does not apply.
    const script = `
      const resolved = require.resolve('@cogman/nestjs');
      const api = require('@cogman/nestjs');
      process.stdout.write(JSON.stringify({ resolved, names: Object.keys(api).sort() }));
    `;
    const out = JSON.parse(
      execFileSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' }),
    ) as {
      resolved: string;
      names: string[];
    };
    expect(out.resolved).toBe(join(root, 'libs', 'cogman', 'dist', 'index.js'));
    expect(out.names).toEqual(
      expect.arrayContaining(['CogmanModule', 'CogmanClient', 'CogmanWorker', 'TaskHandler']),
    );
  });

  it('ships the prebuilt dashboard, whose UI libraries are not its dependencies', () => {
    const [pack] = JSON.parse(
      execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
        cwd: join(root, 'libs', 'cogman'),
        encoding: 'utf8',
      }),
    ) as { files: { path: string }[] }[];
    const files = pack.files.map((file) => file.path);
    expect(files).toEqual(
      expect.arrayContaining([
        'dist/dashboard/dashboard.controller.js',
        'dist/dashboard/ui/index.html',
        expect.stringMatching(/^dist\/dashboard\/ui\/assets\/index-[\w-]+\.js$/),
        expect.stringMatching(/^dist\/dashboard\/ui\/assets\/chart-[\w-]+\.js$/),
      ]),
    );
    const manifest = JSON.parse(
      readFileSync(join(root, 'libs', 'cogman', 'package.json'), 'utf8'),
    ) as { dependencies?: Record<string, string>; peerDependencies?: Record<string, string> };
    for (const ui of ['preact', 'vite', 'uplot', 'playwright-core']) {
      expect(manifest.dependencies ?? {}).not.toHaveProperty(ui);
      expect(manifest.peerDependencies ?? {}).not.toHaveProperty(ui);
    }
  });
});

describe('the packed package', () => {
  let packed: Packed;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    packed = await packPackage();
    cleanups.push(() => rm(dirname(packed.tarball), { recursive: true, force: true }));
  }, 120_000);

  afterAll(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  /** The text of one file of the tarball (a tar of 512-byte blocks, gzipped). */
  function fileOf(path: string): string {
    const tar = gunzipSync(readFileSync(packed.tarball));
    for (let at = 0; at + 512 <= tar.length;) {
      const name = tar.toString('utf8', at, at + 100).replace(/\0.*$/s, '');
      const size = parseInt(tar.toString('utf8', at + 124, at + 136).replace(/\0.*$/s, ''), 8);
      if (!name) break;
      if (name === `package/${path}`) return tar.toString('utf8', at + 512, at + 512 + size);
      at += 512 + Math.ceil(size / 512) * 512;
    }
    throw new Error(`${path} is not in the tarball`);
  }

  it('holds its README, LICENSE and CHANGELOG, the built code with source maps that carry their sources, and nothing else', () => {
    const { files } = packed;
    expect(files).toEqual(
      expect.arrayContaining([
        'README.md',
        'LICENSE',
        'CHANGELOG.md',
        'package.json',
        'dist/index.js',
        'dist/index.d.ts',
        'dist/testing/index.js',
        'dist/rest/index.js',
      ]),
    );
    const others = files.filter(
      (path) =>
        !path.startsWith('dist/') &&
        !['README.md', 'LICENSE', 'CHANGELOG.md', 'package.json'].includes(path),
    );
    expect(others).toEqual([]);
    expect(files.filter((path) => /\.spec\.|tsbuildinfo/.test(path))).toEqual([]);
    const map = JSON.parse(fileOf('dist/client/cogman.client.js.map')) as {
      sourcesContent?: string[];
    };
    expect(map.sourcesContent?.[0]).toContain('export class CogmanClient');

    // The README is the users' part of the repository's.
    const readme = fileOf('README.md');
    expect(readme).toContain('## Installation');
    expect(readme).not.toContain("## Running this repository's tests");
    expect(readme).not.toContain('DEVELOPERS.md');
    // Made at pack time only (prepack), and removed again (postpack).
    expect(() => readFileSync(join(root, 'libs/cogman/README.md'))).toThrow();

    const manifest = JSON.parse(fileOf('package.json')) as { scripts?: Record<string, string> };
    const installScripts = Object.keys(manifest.scripts ?? {}).filter((name) =>
      ['preinstall', 'install', 'postinstall', 'prepare'].includes(name),
    );
    expect(installScripts).toEqual([]);
  });

  it('brings no install-time scripts or telemetry with a default install', async () => {
    const closure = await installClosure();
    const names = [...closure.keys()];
    expect(names).toEqual(
      expect.arrayContaining(['node_modules/ioredis', 'node_modules/@types/amqplib']),
    );
    expect(names.filter((at) => closure.get(at)!.hasInstallScript)).toEqual([]);
    expect(names.filter((at) => /scarf/.test(at))).toEqual([]);
  });

  it('installs into a fresh application that builds with the Nest CLI defaults (and with skipLibCheck false), boots and runs a task', async () => {
    const namespace = uniqueNamespace('fresh-app');
    cleanups.push(() => cleanUp(namespace));
    const dir = await freshApp(
      packed.tarball,
      {
        '@nestjs/common': '^11.1.21',
        '@nestjs/core': '^11.1.21',
        'reflect-metadata': '^0.2.2',
        rxjs: '^7.8.2',
        // As `nest new` adds it (a devDependency there).
        '@types/node': '^20.19.43',
      },
      FRESH_APP_FILES,
    );
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    const compile = (project: string) =>
      run(process.execPath, [tsc, '-p', project], { cwd: dir, encoding: 'utf8' }).catch(
        (error: { stdout: string }) => {
          throw new Error(`tsc -p ${project} failed:\n${error.stdout}`);
        },
      );
    await compile('tsconfig.json');
    await compile('tsconfig.strict.json');
    const { stdout } = await run(process.execPath, ['dist/main.js'], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, AMQP_URI, REDIS_URI, NAMESPACE: namespace },
      timeout: 60_000,
    });
    expect(stdout).toMatch(/^hello world \S+$/m);
    expect(stdout).toContain('status success');
  }, 180_000);
});

/** A new Nest application, as `nest new` makes it (its tsconfig), that uses Cogman. */
const FRESH_APP_FILES: Record<string, string> = {
  // The tsconfig of a new Nest 11 project.
  'tsconfig.json': JSON.stringify({
    compilerOptions: {
      module: 'nodenext',
      moduleResolution: 'nodenext',
      resolvePackageJsonExports: true,
      esModuleInterop: true,
      isolatedModules: true,
      declaration: true,
      removeComments: true,
      emitDecoratorMetadata: true,
      experimentalDecorators: true,
      allowSyntheticDefaultImports: true,
      target: 'ES2023',
      sourceMap: true,
      outDir: './dist',
      baseUrl: './',
      incremental: true,
      skipLibCheck: true,
      strictNullChecks: true,
      forceConsistentCasingInFileNames: true,
      noImplicitAny: false,
      strictBindCallApply: false,
      noFallthroughCasesInSwitch: false,
    },
    include: ['src'],
  }),
  // Every declaration checked, Cogman's and what they reference.
  'tsconfig.strict.json': JSON.stringify({
    extends: './tsconfig.json',
    compilerOptions: {
      strict: true,
      noImplicitAny: true,
      strictBindCallApply: true,
      skipLibCheck: false,
      noEmit: true,
      incremental: false,
    },
  }),
  'src/main.ts': `import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CogmanClient, CogmanModule, TaskHandler, type CogmanTaskHandler, type TaskContext } from '@cogman/nestjs';

@TaskHandler('hello')
class HelloHandler implements CogmanTaskHandler<{ who: string }> {
  handle(payload: { who: string }, ctx: TaskContext): void {
    process.stdout.write(\`hello \${payload.who} \${ctx.task.taskId}\\n\`);
  }
}

@Module({
  imports: [
    CogmanModule.forRoot({
      amqpUri: process.env.AMQP_URI!,
      redisUri: process.env.REDIS_URI!,
      namespace: process.env.NAMESPACE!,
    }),
  ],
  providers: [HelloHandler],
})
class AppModule {}

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error'] });
  app.enableShutdownHooks();
  const cogman = app.get(CogmanClient);
  const task = await cogman.sendTask({ name: 'hello', payload: { who: 'world' } });
  const deadline = Date.now() + 30_000;
  let status = task.status;
  while (status !== 'success' && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    status = (await cogman.getTask(task.taskId))?.status ?? status;
  }
  process.stdout.write(\`status \${status}\\n\`);
  await app.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
`,
};
