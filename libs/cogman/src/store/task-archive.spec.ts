import { getConnectionToken } from '@nestjs/mongoose';
import { COGMAN_MONGO_CONNECTION } from './task-archive';

describe('COGMAN_MONGO_CONNECTION', () => {
  it("is @nestjs/mongoose's token of a connection named cogman, so @InjectConnection('cogman') finds it", () => {
    expect(COGMAN_MONGO_CONNECTION).toBe(getConnectionToken('cogman'));
  });
});
