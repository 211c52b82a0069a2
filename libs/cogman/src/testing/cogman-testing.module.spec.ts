import { Injectable, Module } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { CogmanClient } from '../client/cogman.client';
import { CogmanModule } from '../cogman.module';
import { TaskHandler } from '../decorators/task-handler.decorator';
import { TaskUnrecoverableError } from '../errors';
import type { CogmanTaskHandler, TaskContext } from '../task';
import { CogmanTesting, CogmanTestingModule, type CogmanTestingOptions } from './index';

/** Application code under test: it sends a task. */
@Injectable()
class SignupService {
  constructor(private readonly cogman: CogmanClient) {}

  async signUp(email: string) {
    return this.cogman.sendTask({ name: 'welcome', payload: { email }, primaryKey: email });
  }
}

@Injectable()
class Mailbox {
  readonly sent: string[] = [];
  failuresLeft = 0;
}

@TaskHandler('welcome', { retry: 3, backoff: { type: 'fixed', delay: 60_000 } })
class WelcomeHandler implements CogmanTaskHandler<{ email: string }> {
  constructor(private readonly mailbox: Mailbox) {}

  handle(payload: { email: string }, ctx: TaskContext) {
    if (this.mailbox.failuresLeft-- > 0)
      throw new Error(`mail server down (attempt ${ctx.task.attempt})`);
    this.mailbox.sent.push(payload.email);
    return { sent: payload.email };
  }
}

@TaskHandler('refuse')
class RefuseHandler implements CogmanTaskHandler {
  handle() {
    throw new TaskUnrecoverableError('never');
  }
}

describe('CogmanTestingModule', () => {
  let moduleRef: TestingModule;
  let testing: CogmanTesting;
  let cogman: CogmanClient;
  let mailbox: Mailbox;

  const boot = async (options: CogmanTestingOptions = {}) => {
    moduleRef = await Test.createTestingModule({
      imports: [CogmanTestingModule.forRoot(options)],
      providers: [SignupService, Mailbox, WelcomeHandler, RefuseHandler],
    }).compile();
    await moduleRef.init();
    testing = moduleRef.get(CogmanTesting);
    cogman = moduleRef.get(CogmanClient);
    mailbox = moduleRef.get(Mailbox);
  };

  afterEach(() => moduleRef?.close());

  it('records what the application sent, and runs it on drain', async () => {
    await boot();
    const task = await moduleRef.get(SignupService).signUp('a@b.c');
    expect(task.status).toBe('queued');
    expect(mailbox.sent).toEqual([]);
    expect(testing.sent('welcome')).toEqual([
      expect.objectContaining({
        taskId: task.taskId,
        payload: { email: 'a@b.c' },
        primaryKey: 'a@b.c',
      }),
    ]);
    expect(testing.queued().map((queued) => queued.taskId)).toEqual([task.taskId]);

    expect(await testing.drain()).toBe(1);
    expect(mailbox.sent).toEqual(['a@b.c']);
    expect(await cogman.getTask(task.taskId)).toMatchObject({
      status: 'success',
      name: 'welcome',
      payload: { email: 'a@b.c' },
    });
    expect(testing.queued()).toEqual([]);
  });

  it('records results and resolves waitForResult through retries, with no Redis', async () => {
    await boot();
    mailbox.failuresLeft = 1;
    const task = await cogman.sendTask({ name: 'welcome', payload: { email: 'w@r.t' } });
    const waiting = cogman.waitForResult(task.taskId);
    await testing.runAll();
    expect(await waiting).toMatchObject({ attempt: 2, result: { sent: 'w@r.t' } });
    const refused = await cogman.sendTask({ name: 'refuse' });
    const failing = cogman.waitForResult(refused.taskId).catch((error: unknown) => error);
    await testing.drain();
    expect(await failing).toMatchObject({ code: 'COGMAN_TASK_FAILED', failError: 'never' });
  });

  it('applies retries and their backoff on the kit clock, in no real time', async () => {
    await boot();
    mailbox.failuresLeft = 2;
    const task = await cogman.sendTask({ name: 'welcome', payload: { email: 'x@y.z' } });
    const clockBefore = testing.now().getTime();

    await testing.drain();
    // The first attempt failed; the retry waits for its backoff.
    expect(mailbox.sent).toEqual([]);
    expect(testing.scheduled()).toHaveLength(1);
    expect(testing.scheduled()[0].runAt.getTime()).toBe(clockBefore + 60_000);
    expect(await testing.advance(59_999)).toBe(0);

    expect(await testing.runAll()).toBe(2);
    expect(mailbox.sent).toEqual(['x@y.z']);
    const attempts = await cogman.getAttempts(task.taskId);
    expect(attempts.map((attempt) => [attempt.attempt, attempt.status])).toEqual([
      [1, 'retry'],
      [2, 'retry'],
      [3, 'success'],
    ]);
    expect(attempts[0].failError).toBe('mail server down (attempt 1)');
    expect(testing.now().getTime()).toBe(clockBefore + 120_000);
    expect(testing.published('welcome').map((sent) => sent.attempt)).toEqual([1, 2, 3]);
  });

  it('runs a delayed task only once the clock reaches its due time', async () => {
    await boot();
    const task = await cogman.sendTask({
      name: 'welcome',
      payload: { email: 'd@e.f' },
      delay: 5_000,
    });
    expect(task.status).toBe('scheduled');
    expect(await testing.drain()).toBe(0);
    expect(await testing.advance(4_999)).toBe(0);
    expect(await testing.advance(1)).toBe(1);
    expect(mailbox.sent).toEqual(['d@e.f']);
  });

  it('with runOnSend, sendTask resolves once the handler has run', async () => {
    await boot({ runOnSend: true });
    const task = await cogman.sendTask({ name: 'welcome', payload: { email: 'now@e.f' } });
    expect(mailbox.sent).toEqual(['now@e.f']);
    expect((await cogman.getTask(task.taskId))?.status).toBe('success');
  });

  it('never runs a task cancelled while it waits', async () => {
    await boot();
    const task = await cogman.sendTask({ name: 'welcome', payload: { email: 'no@e.f' } });
    await cogman.cancelTask(task.taskId);
    await testing.drain();
    expect(mailbox.sent).toEqual([]);
    expect((await cogman.getTask(task.taskId))?.status).toBe('cancelled');
  });

  it('dead-letters a task no handler takes, and fails an unrecoverable one without retrying', async () => {
    await boot();
    const unknown = await cogman.sendTask({ name: 'nobody' });
    const refused = await cogman.sendTask({ name: 'refuse', retry: 5 });
    await testing.runAll();
    expect(testing.deadLetters()).toEqual([
      expect.objectContaining({ taskId: unknown.taskId, name: 'nobody', reason: 'unknown_task' }),
    ]);
    expect(await cogman.getTask(refused.taskId)).toMatchObject({
      status: 'failed',
      failError: 'never',
    });
    expect(testing.published('refuse')).toHaveLength(1);
  });

  it('stands in for CogmanModule where an application imports it', async () => {
    const cogmanModule = CogmanTestingModule.forRoot();
    @Module({ imports: [cogmanModule], providers: [SignupService, Mailbox, WelcomeHandler] })
    class AppModule {}
    moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    await moduleRef.init();
    await moduleRef.get(SignupService).signUp('app@e.f');
    await moduleRef.get(CogmanTesting).drain();
    expect(moduleRef.get(Mailbox).sent).toEqual(['app@e.f']);
    expect(moduleRef.get(CogmanClient).services().handlers).toEqual(['welcome']);
  });

  it("replaces an application's CogmanModule through overrideModule, given the same module value", async () => {
    // The application keeps the value of CogmanModule.forRoot() it imports, so a test can name it.
    const cogmanModule = CogmanModule.forRoot({
      amqpUri: 'amqp://unreachable.invalid',
      redisUri: 'redis://unreachable.invalid',
    });
    @Module({ imports: [cogmanModule], providers: [SignupService, Mailbox, WelcomeHandler] })
    class AppModule {}
    moduleRef = await Test.createTestingModule({ imports: [AppModule] })
      .overrideModule(cogmanModule)
      .useModule(CogmanTestingModule.forRoot())
      .compile();
    await moduleRef.init();
    await moduleRef.get(SignupService).signUp('override@e.f');
    await moduleRef.get(CogmanTesting).drain();
    expect(moduleRef.get(Mailbox).sent).toEqual(['override@e.f']);
  });
});
