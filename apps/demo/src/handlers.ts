import { Injectable } from '@nestjs/common';
import { TaskHandler, type CogmanTaskHandler, type TaskContext } from '@cogman/nestjs';
import { setTimeout as delay } from 'node:timers/promises';

export interface EmailPayload {
  to: string;
  subject: string;
}

/** A stand-in for a mail service: high priority work that must not wait behind reports. */
@Injectable()
export class Mailer {
  readonly sent: string[] = [];

  async send(to: string, subject: string, signal: AbortSignal): Promise<void> {
    await delay(20, undefined, { signal });
    this.sent.push(`${to}: ${subject}`);
  }
}

@TaskHandler('email')
export class EmailHandler implements CogmanTaskHandler<EmailPayload> {
  constructor(private readonly mailer: Mailer) {}

  async handle(payload: EmailPayload, ctx: TaskContext): Promise<void> {
    await this.mailer.send(payload.to, payload.subject, ctx.signal);
  }
}

export interface ReportPayload {
  month: string;
  /** The demo makes some reports fail on their first attempts to show retries. */
  failAttempts?: number;
  /** How long the report takes (ms); the served demo has some long ones, seen running. */
  durationMs?: number;
}

@TaskHandler('report')
export class ReportHandler implements CogmanTaskHandler<ReportPayload> {
  async handle(payload: ReportPayload, ctx: TaskContext): Promise<void> {
    if (ctx.task.attempt <= (payload.failAttempts ?? 0)) {
      throw new Error(`report ${payload.month}: data source busy (attempt ${ctx.task.attempt})`);
    }
    await delay(payload.durationMs ?? 50, undefined, { signal: ctx.signal });
  }
}
