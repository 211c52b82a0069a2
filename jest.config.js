/** Unit specs sit beside the code; end-to-end specs in test/ run against the real services. */
const swc = ['@swc/jest', { swcrc: true }];
const shared = {
  transform: { '^.+\\.ts$': swc },
  moduleFileExtensions: ['ts', 'js', 'json'],
  moduleNameMapper: {
    '^@cogman/nestjs$': '<rootDir>/libs/cogman/src',
    '^@cogman/nestjs/(testing|rest)$': '<rootDir>/libs/cogman/src/$1',
  },
  testEnvironment: 'node',
};

module.exports = {
  projects: [
    { ...shared, displayName: 'unit', testMatch: ['<rootDir>/libs/**/*.spec.ts'] },
    {
      ...shared,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
      setupFilesAfterEnv: ['<rootDir>/test/support/jest.setup.ts'],
    },
  ],
};
