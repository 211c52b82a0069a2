import type { AttemptRecord } from '../store/task-log';
import { ProgressReport } from './progress-report';

/** A record that lists the progress it is asked to write, and what it carries to its outcome. */
function fakeRecord() {
  const written: string[] = [];
  const carried: (string | undefined)[] = [];
  const record = {
    reportProgress: (text: string) => {
      written.push(text);
      return Promise.resolve({ applied: true, previous: null });
    },
    carryProgress: (text: string | undefined) => carried.push(text),
  } as unknown as AttemptRecord;
  return { record, written, carried };
}

describe('ProgressReport', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('writes the first report at once, then the latest at most once per interval', () => {
    const { record, written, carried } = fakeRecord();
    const report = new ProgressReport(record, 1000);
    report.report('1');
    report.report('2');
    report.report('3');
    expect(written).toEqual(['1']);
    jest.advanceTimersByTime(999);
    expect(written).toEqual(['1']);
    jest.advanceTimersByTime(1);
    expect(written).toEqual(['1', '3']);
    // Quiet for a while: the next report is written at once again.
    jest.advanceTimersByTime(5000);
    report.report('4');
    expect(written).toEqual(['1', '3', '4']);
    report.end();
    expect(carried).toEqual([undefined]);
  });

  it('hands the value not yet written to the outcome when the handler ends first', () => {
    const { record, written, carried } = fakeRecord();
    const report = new ProgressReport(record, 1000);
    report.report('10');
    report.report('90');
    report.end();
    jest.advanceTimersByTime(5000);
    expect(written).toEqual(['10']);
    expect(carried).toEqual(['90']);
    // Reports after the end (a handler that ignored its timeout) are dropped.
    report.report('99');
    expect(written).toEqual(['10']);
  });
});
