import type { LoggerService } from '@nestjs/common';

/** A logger that keeps every line, to assert on warnings. */
export class CapturedLogs implements LoggerService {
  readonly lines: { level: string; message: string }[] = [];

  log(message: unknown) {
    this.push('log', message);
  }
  warn(message: unknown) {
    this.push('warn', message);
  }
  error(message: unknown) {
    this.push('error', message);
  }
  debug(message: unknown) {
    this.push('debug', message);
  }
  verbose(message: unknown) {
    this.push('verbose', message);
  }

  /** Lines of `level` that contain `text`. */
  find(level: string, text: string | RegExp): string[] {
    return this.lines
      .filter((line) => line.level === level)
      .map((line) => line.message)
      .filter((message) =>
        typeof text === 'string' ? message.includes(text) : text.test(message),
      );
  }

  private push(level: string, message: unknown) {
    this.lines.push({ level, message: String(message) });
    if (process.env.COGMAN_TEST_LOGS) console.log(`[${level}] ${String(message)}`);
  }
}
