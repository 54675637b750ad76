/**
 * Text from elsewhere (a worker's log line, a Livy batch's log, an error message) made safe to print
 * on a terminal: escape sequences (CSI, OSC and the rest) and other control characters would let
 * whoever wrote it move the cursor, rewrite earlier lines, set the window title or worse. Tabs stay.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it removes
const ESCAPES = /\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])|[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

export function printable(text: string): string {
  return text.replace(ESCAPES, '');
}
