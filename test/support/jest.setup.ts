// End-to-end specs wait on real services; each wait has its own, shorter deadline.
jest.setTimeout(120_000);
