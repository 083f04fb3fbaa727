import { ConfigError } from './errors.js';
import { parsePolicy } from './load-policy.js';

/** The lines of the error a policy text is refused with (`p.yaml:LINE key: message`); none when it loads. */
export function problems(text: string): string[] {
  try {
    parsePolicy(text, 'p.yaml', {});
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n');
    throw err;
  }
  return [];
}
