export { CogmanError } from './cogman.error';
export { BrokerUnavailableError } from './broker-unavailable.error';
export { ClientClosedError } from './client-closed.error';
export { OptionsInvalidError } from './options-invalid.error';
export { TaskHandlerDuplicateError } from './task-handler-duplicate.error';
export { TaskHandlerInvalidError } from './task-handler-invalid.error';
export { TaskInvalidError } from './task-invalid.error';
export { TaskPublishError } from './task-publish.error';
