import { register, Registry } from 'prom-client';
import { CogmanMetrics, MAX_METRIC_TASK_NAMES, PROMETHEUS_CONTENT_TYPE } from './cogman.metrics';

const line = (text: string, metric: string) =>
  text.split('\n').find((l) => l.startsWith(metric)) ?? `(no ${metric})`;

describe('CogmanMetrics', () => {
  it("serves prom-client's text format, and its registry is prom-client's", () => {
    expect(PROMETHEUS_CONTENT_TYPE).toBe(Registry.PROMETHEUS_CONTENT_TYPE);
    expect(new CogmanMetrics().registry).toBeInstanceOf(Registry);
  });

  it('counts per task name and priority, in a registry of its own', async () => {
    const metrics = new CogmanMetrics();
    metrics.taskSent('email', 'high');
    metrics.taskSent('email', 'high');
    metrics.taskProcessed('email', 'high', 'success', 250);
    metrics.taskProcessed('email', 'high', 'retry', 10);
    metrics.taskRetried('email', 'high');
    metrics.taskFailed('report', 'low');
    metrics.published('low', 0.004);
    const text = await metrics.metrics();
    expect(line(text, 'cogman_tasks_sent_total{name="email",priority="high"}')).toMatch(/ 2$/);
    expect(
      line(text, 'cogman_tasks_processed_total{name="email",priority="high",status="success"}'),
    ).toMatch(/ 1$/);
    expect(line(text, 'cogman_tasks_retried_total{name="email",priority="high"}')).toMatch(/ 1$/);
    expect(line(text, 'cogman_tasks_failed_total{name="report",priority="low"}')).toMatch(/ 1$/);
    expect(line(text, 'cogman_task_duration_seconds_sum{name="email",priority="high"}')).toMatch(
      / 0\.26$/,
    );
    expect(line(text, 'cogman_publish_duration_seconds_count{priority="low"}')).toMatch(/ 1$/);
    expect(metrics.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    // Nothing in the global registry, and a second instance does not clash with the first.
    expect(await register.metrics()).not.toContain('cogman_');
    expect(() => new CogmanMetrics()).not.toThrow();
  });

  it('reads queue depths and buffers when scraped, once per scrape', async () => {
    const metrics = new CogmanMetrics();
    let reads = 0;
    metrics.collectWith(() => {
      reads++;
      return Promise.resolve({
        offlineTasks: 3,
        pendingRedisWrites: 1,
        activeTasks: 2,
        queues: [
          { queue: 'high_priority_queue_0', ready: 7, unacked: 2, consumers: 1 },
          { queue: 'cogman_dead_letter_queue', ready: 4, unacked: null, consumers: 0 },
        ],
      });
    });
    const text = await metrics.metrics();
    expect(reads).toBe(1);
    expect(line(text, 'cogman_offline_buffer_tasks')).toBe('cogman_offline_buffer_tasks 3');
    expect(
      line(text, 'cogman_queue_messages{queue="high_priority_queue_0",state="ready"}'),
    ).toMatch(/ 7$/);
    expect(
      line(text, 'cogman_queue_messages{queue="high_priority_queue_0",state="unacked"}'),
    ).toMatch(/ 2$/);
    expect(text).not.toContain('queue="cogman_dead_letter_queue",state="unacked"');
    expect(line(text, 'cogman_queue_consumers{queue="high_priority_queue_0"}')).toMatch(/ 1$/);
  });

  it('still answers when the state cannot be read', async () => {
    const metrics = new CogmanMetrics();
    metrics.collectWith(() => Promise.reject(new Error('broker down')));
    metrics.taskSent('email', 'low');
    const text = await metrics.metrics();
    expect(text).toContain('cogman_tasks_sent_total{name="email",priority="low"} 1');
    expect(text).not.toContain('cogman_queue_messages{');
  });

  it(`gives at most ${MAX_METRIC_TASK_NAMES} task names their own labels`, async () => {
    const metrics = new CogmanMetrics();
    for (let i = 0; i < MAX_METRIC_TASK_NAMES + 20; i++) metrics.taskSent(`name-${i}`, 'low');
    const text = await metrics.metrics();
    expect(text).toContain(`name="name-${MAX_METRIC_TASK_NAMES - 1}"`);
    expect(text).not.toContain(`name="name-${MAX_METRIC_TASK_NAMES}"`);
    expect(line(text, 'cogman_tasks_sent_total{name="_other",priority="low"}')).toMatch(/ 20$/);
  });
});
