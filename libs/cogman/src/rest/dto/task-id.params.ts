import { ApiProperty } from '@nestjs/swagger';
import { Matches } from 'class-validator';
import { TASK_ID_PATTERN } from './rest-input';

/** The `:id` of a task route. */
export class TaskIdParams {
  @ApiProperty({
    description: 'Id of any attempt of the task (a UUID, or letters, digits, ".", "_", ":", "-")',
    example: '0b6f2d1c-3c9e-4f6e-9a43-8c0f1d2e3a4b',
    pattern: TASK_ID_PATTERN.source,
  })
  @Matches(TASK_ID_PATTERN, {
    message: 'id must be a task id: up to 128 letters, digits, ".", "_", ":" or "-"',
  })
  id!: string;
}
