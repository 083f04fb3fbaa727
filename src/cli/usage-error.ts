/** The command line asks for something that cannot be done as given; exits 2 (usage) with the message. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
