import { TaskHandlerInvalidError } from '../errors';
import { TaskHandlerRegistry } from './task-handler.registry';

describe('TaskHandlerRegistry', () => {
  const handler = (options: object) => ({
    name: 'email',
    source: 'EmailHandler',
    options,
    resolve: () => ({ handle: () => undefined }),
  });

  it('takes a rate limit of whole numbers', () => {
    const registry = new TaskHandlerRegistry();
    registry.add(handler({ rateLimit: { max: 100, duration: 1000 } }));
    expect(registry.get('email')?.options.rateLimit).toEqual({ max: 100, duration: 1000 });
  });

  it.each([
    [{ max: 0, duration: 1000 }],
    [{ max: 1.5, duration: 1000 }],
    [{ max: 10 }],
    [{ duration: 1000 }],
    [null],
    ['10/s'],
  ])('refuses the rate limit %j', (rateLimit) => {
    expect(() => new TaskHandlerRegistry().add(handler({ rateLimit }))).toThrow(
      TaskHandlerInvalidError,
    );
  });

  it.each([[0], [2.5], ['2']])('refuses the group concurrency %j', (groupConcurrency) => {
    expect(() => new TaskHandlerRegistry().add(handler({ groupConcurrency }))).toThrow(
      /groupConcurrency must be a whole number/,
    );
  });
});
