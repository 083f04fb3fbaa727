/** Terminal colours, used only when the output is a terminal and NO_COLOR is unset (no-color.org). */
const CODES = { red: 31, green: 32, yellow: 33, gray: 90, bold: 1 } as const;
export type Colour = keyof typeof CODES;

/** Whether `out` gets colour: a TTY, without NO_COLOR, and not a dumb terminal. */
export function colourful(out: { isTTY?: boolean } = process.stdout, env: NodeJS.ProcessEnv = process.env): boolean {
  return !!out.isTTY && !env.NO_COLOR && env.TERM !== 'dumb';
}

/** A function that wraps text in the colour's escape codes. */
export function paint(colour: Colour): (text: string) => string {
  return (text) => `\u001b[${CODES[colour]}m${text}\u001b[0m`;
}

/** The colour of a deployment state or a sample result: red for what needs a human, green for what went well. */
export function stateColour(state: string): Colour | undefined {
  if (/fail|breach|frozen|held|would_roll_back/.test(state)) return 'red';
  if (/rolled_back|passed|^ok$|known-good/.test(state)) return 'green';
  if (/watching|rolling_back|inconclusive|no-data/.test(state)) return 'yellow';
  return undefined;
}
