export * from './task-id';
export * from './task-message';
export * from './task-status';
export * from './task.interfaces';
export * from './task-settings';
export * from './new-task';
export * from './task-unique';
export * from './task-schedule';
