import { TaskCancelledError, WorkerShutdownError } from '../errors';
import { TaskAbort } from './task-abort';

describe('TaskAbort', () => {
  it('aborts the signal it has handed out, with the reason, and tells its listeners once', () => {
    const abort = new TaskAbort();
    const signal = abort.signal;
    const heard: unknown[] = [];
    abort.onAbort((reason) => heard.push(reason));
    const reason = new TaskCancelledError('t1');

    abort.abort(reason);
    abort.abort(new WorkerShutdownError());

    expect(abort.aborted).toBe(true);
    expect(abort.reason).toBe(reason);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);
    expect(heard).toEqual([reason]);
  });

  it('hands out an aborted signal when asked only after the abort', () => {
    const abort = new TaskAbort();
    const reason = new WorkerShutdownError();
    abort.abort(reason);
    expect(abort.signal.aborted).toBe(true);
    expect(abort.signal.reason).toBe(reason);
  });

  it('calls a listener added after the abort at once, and not one that stopped listening', () => {
    const abort = new TaskAbort();
    const stopped = jest.fn();
    abort.onAbort(stopped)();
    const reason = new WorkerShutdownError();
    abort.abort(reason);
    const late = jest.fn();
    abort.onAbort(late);
    expect(stopped).not.toHaveBeenCalled();
    expect(late).toHaveBeenCalledWith(reason);
  });
});
